package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"strconv"
	"testing"
	"time"
)

// raise17 raises the fixture's cluster to encoding 17.
func raise17(a *applier) {
	a.t.Helper()
	if r := a.applyAs(&SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: EncodingJSON17}}, EncodingJSON17); r.Err != nil {
		a.t.Fatal(r.Err)
	}
}

// appendINBOX appends body to a@example.com's INBOX with unique-id uidl
// ("" for none), encoded in enc, and returns its UID.
func appendINBOX(a *applier, body, uidl string, enc int) uint32 {
	a.t.Helper()
	r := a.applyAs(&Deliver{Hash: bodyHash(body), Size: 10, Replicas: []string{"n1", "n2"},
		Mailboxes: []string{"a@example.com"}, Folder: "INBOX", POP3UIDL: uidl}, enc)
	if r.Err != nil {
		a.t.Fatal(r.Err)
	}
	return r.Value.(DeliverResult).UIDs["a@example.com"]
}

func inboxUIDLs(a *applier) map[uint32]string {
	a.t.Helper()
	f, err := a.s.Folder("a@example.com", "INBOX")
	if err != nil {
		a.t.Fatal(err)
	}
	m, err := a.s.POP3UIDLs("a@example.com", f.ID, UIDRange{1, ^uint32(0)})
	if err != nil {
		a.t.Fatal(err)
	}
	return m
}

// TestPOP3UIDLNeedsEncoding17: below the setting of 17 a proposer cannot
// write the field, and an entry that carries it in an older encoding (as
// an older release would read it: without it) keeps nothing.
func TestPOP3UIDLNeedsEncoding17(t *testing.T) {
	a := deliveryFixture(t)
	if _, err := EncodeAs(&Deliver{Hash: bodyHash("x"), POP3UIDL: "abc"}, EncodingJSON15); !errors.Is(err, ErrEncoding) {
		t.Fatalf("encode at 15: %v, want ErrEncoding", err)
	}
	raw, _ := json.Marshal(&Deliver{Hash: bodyHash("x"), Size: 10, Replicas: []string{"n1", "n2"},
		Mailboxes: []string{"a@example.com"}, Folder: "INBOX", POP3UIDL: "abc"})
	if r := a.applyRaw(append([]byte{byte(CmdDeliver), EncodingJSON}, raw...)); r.Err != nil {
		t.Fatal(r.Err)
	}
	if m := inboxUIDLs(a); len(m) != 0 {
		t.Fatalf("below encoding 17 the unique-id was kept: %v", m)
	}
	if r := a.applyAs(&POP3UIDLSet{Mailbox: "a@example.com", UIDLs: map[uint32]string{1: "abc"}}, EncodingJSON17); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("POP3UIDLSet below encoding 17: %v, want ErrInvalid", r.Err)
	}
}

// TestPOP3UIDLLivesAndDiesWithItsMessage: a kept unique-id is written
// by the append or by POP3UIDLSet (the first stands), travels in a
// snapshot, and goes with its message on every path that deletes one.
func TestPOP3UIDLLivesAndDiesWithItsMessage(t *testing.T) {
	a := deliveryFixture(t)
	raise17(a)
	u1 := appendINBOX(a, "one", "00000001AAAA", EncodingJSON17)
	u2 := appendINBOX(a, "two", "", EncodingJSON17)
	appendINBOX(a, "three", "", EncodingJSON17)
	f, _ := a.s.Folder("a@example.com", "INBOX")
	r := a.applyAs(&POP3UIDLSet{Mailbox: "a@example.com", UIDValidity: f.UIDValidity,
		UIDLs: map[uint32]string{u1: "other", u2: "00000002AAAA", 99: "gone"}}, EncodingJSON17)
	if r.Err != nil || r.Value.(POP3UIDLSetResult).Set != 1 {
		t.Fatalf("set: %+v", r)
	}
	want := map[uint32]string{u1: "00000001AAAA", u2: "00000002AAAA"}
	if m := inboxUIDLs(a); !maps.Equal(m, want) {
		t.Fatalf("kept %v, want %v", m, want)
	}
	for _, bad := range []string{"has space", string(bytes.Repeat([]byte("x"), 71)), "caf\xc3\xa9", "x\x00"} {
		r := a.applyAs(&Deliver{Hash: bodyHash("bad"), Size: 1, Replicas: []string{"n1", "n2"},
			Mailboxes: []string{"a@example.com"}, Folder: "INBOX", POP3UIDL: bad}, EncodingJSON17)
		if r.Err != nil || r.Value.(DeliverResult).Rejected["a@example.com"] != Code(errorf(ErrInvalid, "")) {
			t.Errorf("unique-id %q: %+v, want the append refused as invalid", bad, r)
		}
	}
	if r := a.applyAs(&Deliver{Hash: bodyHash("sub"), Size: 1, Replicas: []string{"n1", "n2"},
		Mailboxes: []string{"a@example.com"}, Folder: "Sent", POP3UIDL: "fine"}, EncodingJSON17); r.Err != nil || len(r.Value.(DeliverResult).Rejected) != 1 {
		t.Errorf("a unique-id for another folder: %+v, want the append refused", r)
	}
	// A snapshot carries them.
	b := newApplier(t)
	if err := b.s.Restore(bytes.NewReader(dump(t, a.s))); err != nil {
		t.Fatal(err)
	}
	if m := inboxUIDLs(b); !maps.Equal(m, want) {
		t.Fatalf("restored state keeps %v, want %v", m, want)
	}

	// Expunge deletes the expunged message's.
	a.must(&Expunge{Mailbox: "a@example.com", Folder: "INBOX", UIDs: []UIDRange{{u1, u1}}})
	if m := inboxUIDLs(a); !maps.Equal(m, map[uint32]string{u2: "00000002AAAA"}) {
		t.Fatalf("after expunge: %v", m)
	}
	// A MOVE out of INBOX takes the moved message's (a copy keeps none).
	a.must(&FolderCreate{Mailbox: "a@example.com", Name: "Archive"})
	a.must(&Copy{Mailbox: "a@example.com", From: "INBOX", To: "Archive", UIDs: []UIDRange{{u2, u2}}})
	if m := inboxUIDLs(a); !maps.Equal(m, map[uint32]string{u2: "00000002AAAA"}) {
		t.Fatalf("after a copy: %v", m)
	}
	a.must(&Copy{Mailbox: "a@example.com", From: "INBOX", To: "Archive", UIDs: []UIDRange{{u2, u2}}, Move: true})
	if got := dumpPrefix(t, a.s, []byte("i\x00")); len(got) != 0 {
		t.Fatalf("after a move: %q", got)
	}
	appendINBOX(a, "four", "00000004AAAA", EncodingJSON17)
	// Renaming INBOX moves its messages out of POP3's sight.
	a.must(&FolderRename{Mailbox: "a@example.com", From: "INBOX", To: "Old"})
	if got := dumpPrefix(t, a.s, []byte("i\x00")); len(got) != 0 {
		t.Fatalf("after INBOX rename: %q", got)
	}
	// A mailbox removal takes them all.
	c := deliveryFixture(t)
	raise17(c)
	appendINBOX(c, "one", "keep-me", EncodingJSON17)
	c.must(&MailboxRemove{Address: "a@example.com"})
	if got := dumpPrefix(t, c.s, []byte("i\x00")); len(got) != 0 {
		t.Fatalf("after mailbox removal: %q", got)
	}
}

// TestStorablePOP3UIDL: RFC 1939 §7's characters and length, and not
// the form the folder's own messages have.
func TestStorablePOP3UIDL(t *testing.T) {
	for s, want := range map[string]bool{
		"00000001499602D2": true, "a": true, "~!": true, string(bytes.Repeat([]byte("x"), 70)): true,
		"": false, string(bytes.Repeat([]byte("x"), 71)): false, "a b": false, "a\x7f": false, "\xc3\xa9": false,
		"7.12": false, "7.": true, "7.1x": true, "8.12": true,
	} {
		if got := StorablePOP3UIDL(s, 7); got != want {
			t.Errorf("StorablePOP3UIDL(%q, 7) = %v, want %v", s, got, want)
		}
	}
}

// BenchmarkApplyExpungeMany measures the apply of an Expunge of 1000
// messages of one folder (a POP3 QUIT after DELE of a large maildrop),
// which deletes with each message the key of a POP3 unique-id it may
// have. ns/op is per expunged message, delivery excluded.
func BenchmarkApplyExpungeMany(b *testing.B) {
	const n = 1000
	a := deliveryFixture(b)
	seq := 0
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		cs := make([]Command, 0, n)
		for range n {
			seq++
			cs = append(cs, &Deliver{Hash: bodyHash(strconv.Itoa(seq)), Size: 4096, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
		}
		a.applyInBatches(n, func(i int) Command { return cs[i] })
		b.StartTimer()
		a.must(&Expunge{Mailbox: "a@example.com", Folder: "INBOX"})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
}

// TestPOP3UIDLsSkipsDeletedMessages: the unique-ids of a range are read
// without walking the tombstones every deleted message leaves under the
// unique-id keys (delMessage), as a maildrop that POP3 empties over and
// over has below its live messages; the read costs what the View of the
// same folder does, not what the deletions did.
func TestPOP3UIDLsSkipsDeletedMessages(t *testing.T) {
	a := deliveryFixture(t)
	raise17(a)
	seq := 0
	for range 2 {
		a.applyInBatches(15000, func(int) Command {
			seq++
			return &Deliver{Hash: bodyHash(strconv.Itoa(seq)), Size: 10, Replicas: []string{"n1", "n2"},
				Mailboxes: []string{"a@example.com"}, Folder: "INBOX"}
		})
		a.must(&Expunge{Mailbox: "a@example.com", Folder: "INBOX"})
	}
	live := appendINBOX(a, "live", "kept-one", EncodingJSON17)
	f, err := a.s.Folder("a@example.com", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := a.s.POP3UIDLs("a@example.com", f.ID, UIDRange{live + 1, ^uint32(0)}); err != nil || len(m) != 0 {
		t.Fatalf("above the live message: %v, %v", m, err)
	}
	const calls = 50
	var view, uidls time.Duration
	for range calls {
		start := time.Now()
		if _, _, err := a.s.View("a@example.com", "INBOX"); err != nil {
			t.Fatal(err)
		}
		view += time.Since(start)
		start = time.Now()
		m, err := a.s.POP3UIDLs("a@example.com", f.ID, UIDRange{f.LowUID, ^uint32(0)})
		uidls += time.Since(start)
		if err != nil || !maps.Equal(m, map[uint32]string{live: "kept-one"}) {
			t.Fatalf("kept: %v, %v", m, err)
		}
	}
	t.Logf("View %v, POP3UIDLs %v per call", view/calls, uidls/calls)
	if uidls > 5*view {
		t.Errorf("POP3UIDLs took %v a call, the View of the same folder %v: it walks the deleted messages", uidls/calls, view/calls)
	}
}
