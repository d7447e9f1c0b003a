package fsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
)

// digestLog is a log of directory writes with two StateDigest entries
// among them, encoded at EncodingJSON9.
func digestLog(t *testing.T) []Entry {
	t.Helper()
	cmds := []Command{&DomainAdd{Name: "example.com"}}
	for i := range 6 {
		cmds = append(cmds, &MailboxAdd{Mailboxes: []NewMailbox{{Address: fmt.Sprintf("u%d@example.com", i)}}})
		if i == 2 || i == 4 {
			cmds = append(cmds, &StateDigest{ID: fmt.Sprintf("d%d", i)})
		}
	}
	out := make([]Entry, len(cmds))
	for i, c := range cmds {
		data, err := EncodeAs(c, EncodingJSON9)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = Entry{Index: uint64(i + 1), Data: data}
	}
	return out
}

// digestState opens a state that digests every view it is handed.
func digestState(t *testing.T) (*State, map[string]Digest) {
	t.Helper()
	got := map[string]Digest{}
	s, err := Open(t.TempDir(), Options{OnStateDigest: func(id string, v *View) {
		defer v.Release()
		d, err := v.Digest(context.Background())
		if err != nil {
			t.Errorf("digest %s: %v", id, err)
		}
		got[id] = d
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, got
}

// A digest is of the state right after its entry, however the log is cut
// into batches: one batch of the whole log (the digest entry in the
// middle of it) and one entry per batch give the same digests, at the
// digest entries' indexes.
func TestStateDigestAtItsEntryWhateverTheBatches(t *testing.T) {
	log := digestLog(t)
	whole, wholeGot := digestState(t)
	whole.ApplyBatch(log)
	single, singleGot := digestState(t)
	for _, e := range log {
		single.ApplyBatch([]Entry{e})
	}
	if len(wholeGot) != 2 || len(singleGot) != 2 {
		t.Fatalf("digests: %v and %v, want 2 each", wholeGot, singleGot)
	}
	for id, d := range wholeGot {
		if d != singleGot[id] {
			t.Errorf("digest %s: %+v in one batch, %+v entry by entry", id, d, singleGot[id])
		}
	}
	if wholeGot["d2"].Index != 5 || wholeGot["d4"].Index != 8 {
		t.Errorf("indexes: %+v", wholeGot)
	}
	if wholeGot["d2"].SHA256 == wholeGot["d4"].SHA256 || wholeGot["d2"].Keys >= wholeGot["d4"].Keys {
		t.Errorf("the later digest sees no more than the earlier: %+v", wholeGot)
	}
	// A state that stopped at the first digest entry holds what its
	// digest describes.
	cut, cutGot := digestState(t)
	cut.ApplyBatch(log[:5])
	if d := digestNow(t, cut); d != cutGot["d2"] || d != wholeGot["d2"] {
		t.Errorf("state at 5: %+v, digest entry's view %+v", d, wholeGot["d2"])
	}
}

// digestNow digests s as it stands.
func digestNow(t *testing.T, s *State) Digest {
	t.Helper()
	s.mu.RLock()
	v := s.newView(s.Applied())
	s.mu.RUnlock()
	defer v.Release()
	d, err := v.Digest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A stray key changes the digest; so does a changed value.
func TestStateDigestSeesAStrayKey(t *testing.T) {
	a, _ := digestState(t)
	a.ApplyBatch(digestLog(t))
	before := digestNow(t, a)
	if err := a.db.Set([]byte("u\x00example.com\x00stray"), []byte("{}"), nil); err != nil {
		t.Fatal(err)
	}
	after := digestNow(t, a)
	if after.SHA256 == before.SHA256 || after.Keys != before.Keys+1 {
		t.Fatalf("stray key: %+v then %+v", before, after)
	}
}

// Below encoding 9 the command does not encode, so no proposer writes it
// into a log an older release reads.
func TestStateDigestNeedsEncoding9(t *testing.T) {
	if _, err := EncodeAs(&StateDigest{ID: "x"}, EncodingJSON8); !errors.Is(err, ErrEncoding) {
		t.Fatalf("encode at 8: %v, want ErrEncoding", err)
	}
	data, err := EncodeAs(&StateDigest{ID: "x"}, EncodingJSON9)
	if err != nil || data[1] != EncodingJSON9 {
		t.Fatalf("encode at 9: %v %v", data, err)
	}
	if err := CheckEncoding(data, EncodingJSON8); !errors.Is(err, ErrEncoding) {
		t.Fatalf("leader at 8 takes it: %v", err)
	}
}

// A view the state closes under its reader (Restore, Close) fails the
// digest instead of reading a closed store.
func TestStateDigestViewClosedByClose(t *testing.T) {
	s, _ := digestState(t)
	s.ApplyBatch(digestLog(t))
	s.mu.RLock()
	v := s.newView(s.Applied())
	s.mu.RUnlock()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Digest(context.Background()); !errors.Is(err, ErrViewClosed) {
		t.Fatalf("digest after Close: %v", err)
	}
	v.Release()
}

// An invalid ID is refused and takes no view.
func TestStateDigestRefusesAnEmptyID(t *testing.T) {
	s, got := digestState(t)
	data, err := EncodeAs(&StateDigest{}, EncodingJSON9)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.ApplyBatch([]Entry{{Index: 1, Data: data}})[0]; Code(r.Err) != "invalid" || len(got) != 0 {
		t.Fatalf("empty ID: %v, digests %v", r.Err, got)
	}
}

// Restore closes the views of the store it replaces.
func TestStateDigestViewClosedByRestore(t *testing.T) {
	src, _ := digestState(t)
	src.ApplyBatch(digestLog(t))
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	dst, _ := digestState(t)
	dst.ApplyBatch(digestLog(t)[:3])
	dst.mu.RLock()
	v := dst.newView(dst.Applied())
	dst.mu.RUnlock()
	defer v.Release()
	if err := dst.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Digest(context.Background()); !errors.Is(err, ErrViewClosed) {
		t.Fatalf("digest after Restore: %v", err)
	}
	if digestNow(t, dst) != digestNow(t, src) {
		t.Fatal("the restored state digests unlike its source")
	}
}

// ApplyBatch cut into runs at digest entries answers as one entry at a
// time does: one result per entry, in order, refusals included, entries
// already applied and entries without data answered empty; digest
// entries at the start, at the end and next to each other each get a
// view at their own index, and an empty batch changes nothing.
func TestStateDigestRunsAnswerEveryEntryInOrder(t *testing.T) {
	enc := func(c Command) []byte {
		data, err := EncodeAs(c, EncodingJSON9)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	box := func(a string) Command { return &MailboxAdd{Mailboxes: []NewMailbox{{Address: a}}} }
	log := []Entry{
		{Index: 1, Data: enc(&StateDigest{ID: "start"})},
		{Index: 2, Data: enc(&DomainAdd{Name: "example.com"})},
		{Index: 3},
		{Index: 4, Data: enc(box("u0@example.com"))},
		{Index: 5, Data: enc(box("u0@example.com"))}, // refused: exists
		{Index: 6, Data: enc(&StateDigest{ID: "b"})},
		{Index: 7, Data: enc(&StateDigest{ID: "c"})},
		{Index: 8, Data: enc(box("u1@example.com"))},
		{Index: 9, Data: enc(&StateDigest{})}, // refused: no ID
		{Index: 10, Data: enc(box("u2@example.com"))},
		{Index: 11, Data: enc(&StateDigest{ID: "end"})},
	}
	one, oneGot := digestState(t)
	var want []Result
	for _, e := range log {
		want = append(want, one.ApplyBatch([]Entry{e})...)
	}
	whole, wholeGot := digestState(t)
	if r := whole.ApplyBatch(nil); len(r) != 0 || whole.Applied() != 0 {
		t.Fatalf("empty batch: %v, applied %d", r, whole.Applied())
	}
	whole.ApplyBatch(log[:2])
	got := whole.ApplyBatch(log) // the first two again: a replay
	if len(got) != len(log) {
		t.Fatalf("%d results for %d entries", len(got), len(log))
	}
	for i := range log {
		w := want[i]
		if i < 2 {
			w = Result{}
		}
		if Code(got[i].Err) != Code(w.Err) || fmt.Sprint(got[i].Value) != fmt.Sprint(w.Value) {
			t.Errorf("entry %d: %+v, one at a time %+v", log[i].Index, got[i], w)
		}
	}
	if Code(want[4].Err) != "exists" || Code(want[8].Err) != "invalid" {
		t.Fatalf("the refusals were not refused: %v, %v", want[4].Err, want[8].Err)
	}
	if whole.Applied() != 11 || one.Applied() != 11 {
		t.Fatalf("applied %d and %d, want 11", whole.Applied(), one.Applied())
	}
	wantIdx := map[string]uint64{"start": 1, "b": 6, "c": 7, "end": 11}
	if len(wholeGot) != len(wantIdx) || len(oneGot) != len(wantIdx) {
		t.Fatalf("digests %v and %v", wholeGot, oneGot)
	}
	for id, idx := range wantIdx {
		if wholeGot[id] != oneGot[id] || wholeGot[id].Index != idx {
			t.Errorf("digest %s: %+v in one batch, %+v one at a time, want index %d", id, wholeGot[id], oneGot[id], idx)
		}
	}
	if b, c := wholeGot["b"], wholeGot["c"]; b.Keys != c.Keys || b.Bytes != c.Bytes {
		t.Errorf("adjacent digests hold other keys though only the applied index moved: %+v %+v", b, c)
	}
	whole.viewsMu.Lock()
	open := len(whole.views)
	whole.viewsMu.Unlock()
	if open != 0 {
		t.Errorf("%d views left open", open)
	}
}
