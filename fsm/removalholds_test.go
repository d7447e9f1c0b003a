package fsm

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// hold is a's mark set (on) or released by remover, written in the
// newest encoding.
func (a *applier) hold(remover string, on bool) Result {
	a.t.Helper()
	return a.applyAs(&MailboxUpdate{Address: "a@example.com", Removing: &on, Remover: remover}, NewestEncoding)
}

// takesMail reports whether a delivery to a@example.com is stored.
func (a *applier) takesMail(t *testing.T) bool {
	t.Helper()
	r := a.apply(&Deliver{Hash: bodyHash("probe"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	res := r.Value.(DeliverResult)
	if rej := res.Rejected["a@example.com"]; rej != "" && rej != "being_removed" {
		t.Fatalf("delivery refused with %s", rej)
	}
	return res.Rejected["a@example.com"] == ""
}

func holds(t *testing.T, a *applier) int {
	t.Helper()
	n, err := a.s.RemovalHolds("a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// From command encoding 12 two removals of one mailbox each hold its
// mark: the one that set it releasing its hold (it failed) leaves the
// mark while the other runs on, a repeated release changes nothing, and
// the last release clears it. A clear that names no remover clears the
// whole mark, and the mailbox's removal takes its holds with it.
func TestRemovalHoldsKeepTheMarkFromEncoding12(t *testing.T) {
	a := removingFixture(t)
	a.raiseTo(EncodingJSON12)
	for _, r := range []Result{a.hold("first", true), a.hold("second", true), a.hold("second", true)} {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if n := holds(t, a); n != 2 || a.takesMail(t) {
		t.Fatalf("two removals under way: %d holds, or mail taken", n)
	}
	for range 2 {
		if r := a.hold("first", false); r.Err != nil {
			t.Fatal(r.Err)
		}
		if n := holds(t, a); n != 1 || a.takesMail(t) {
			t.Fatalf("the first removal failed while the second runs: %d holds, or mail taken", n)
		}
	}
	if r := a.hold("second", false); r.Err != nil {
		t.Fatal(r.Err)
	}
	if n := holds(t, a); n != 0 || !a.takesMail(t) {
		t.Fatalf("both removals failed: %d holds, or mail refused", n)
	}

	a.hold("first", true)
	a.hold("second", true)
	if r := a.hold("", false); r.Err != nil || holds(t, a) != 0 || !a.takesMail(t) {
		t.Fatalf("clear of the whole mark: %v, %d holds", r.Err, holds(t, a))
	}
	a.hold("first", true)
	a.must(&MailboxRemove{Address: "a@example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "a@example.com"}}})
	if n := holds(t, a); n != 0 || !a.takesMail(t) {
		t.Fatalf("mailbox made again after its removal: %d holds, or mail refused", n)
	}
	if stray := holdKeys(t, a); len(stray) != 0 {
		t.Fatalf("holds left behind by the removal: %q", stray)
	}
}

// holdKeys lists every hold key of the state.
func holdKeys(t *testing.T, a *applier) []string {
	t.Helper()
	it, err := a.s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("h\x00"), UpperBound: []byte("h\x01")})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, string(it.Key()))
	}
	return out
}

// A mark set below 12 (or by an update that names no remover) has no
// known owner: a removal that holds it too and then fails leaves it set,
// and only a clear of the whole mark ends it.
func TestRemovalHoldsKeepAMarkOfUnknownOwner(t *testing.T) {
	a := removingFixture(t)
	a.raiseTo(EncodingJSON11)
	if r := a.hold("", true); r.Err != nil {
		t.Fatal(r.Err)
	}
	a.raiseTo(EncodingJSON12)
	if n := holds(t, a); n != 1 {
		t.Fatalf("a mark set at 11: %d holds, want 1", n)
	}
	a.hold("later", true)
	a.hold("later", false)
	if n := holds(t, a); n != 1 || a.takesMail(t) {
		t.Fatalf("a removal at 12 released its hold beside a mark set at 11: %d holds, or mail taken", n)
	}
	a.hold("", false)
	if n := holds(t, a); n != 0 || !a.takesMail(t) {
		t.Fatalf("clear of a mark set at 11: %d holds, or mail refused", n)
	}
}

// Below command encoding 12 the mark is one bit, as before: an update
// carrying a remover cannot be written below 12, one written below 12
// with the field anyway is applied without it, and any clear clears
// the mark another removal set.
func TestRemovalHoldsGateBelowEncoding12(t *testing.T) {
	on := true
	if _, err := EncodeAs(&MailboxUpdate{Address: "a@example.com", Removing: &on, Remover: "r1"}, EncodingJSON11); !errors.Is(err, ErrEncoding) {
		t.Fatalf("remover encoded at 11: %v, want ErrEncoding", err)
	}
	a := removingFixture(t)
	a.raiseTo(EncodingJSON11)
	for _, raw := range []string{
		`{"address":"a@example.com","removing":true,"remover":"first"}`,
		`{"address":"a@example.com","removing":true,"remover":"second"}`,
	} {
		if r := a.applyRaw(append([]byte{byte(CmdMailboxUpdate), EncodingJSON11}, raw...)); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if a.takesMail(t) {
		t.Fatal("mail taken while marked at 11")
	}
	if r := a.applyRaw(append([]byte{byte(CmdMailboxUpdate), EncodingJSON11}, `{"address":"a@example.com","removing":false,"remover":"first"}`...)); r.Err != nil {
		t.Fatal(r.Err)
	}
	if !a.takesMail(t) {
		t.Fatal("at 11 a clear naming one removal left the mark; want it cleared, as before")
	}
	if stray := holdKeys(t, a); len(stray) != 0 {
		t.Fatalf("holds written below 12: %q", stray)
	}
}

// Limits: a remover past MaxRemoverLen, or with a NUL, is refused; past
// MaxRemovalHolds a removal adds no hold of its own and the mark stays.
func TestRemovalHoldsLimits(t *testing.T) {
	a := removingFixture(t)
	a.raiseTo(EncodingJSON12)
	for _, bad := range []string{strings.Repeat("r", MaxRemoverLen+1), "a\x00b"} {
		if r := a.hold(bad, true); !errors.Is(r.Err, ErrInvalid) {
			t.Fatalf("remover %q: %v, want ErrInvalid", bad, r.Err)
		}
	}
	for i := range MaxRemovalHolds + 1 {
		if r := a.hold(strings.Repeat("r", i+1), true); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if n := holds(t, a); n != MaxRemovalHolds {
		t.Fatalf("%d holds, want at most %d", n, MaxRemovalHolds)
	}
	for i := range MaxRemovalHolds + 1 {
		a.hold(strings.Repeat("r", i+1), false)
	}
	if n := holds(t, a); n != 0 || !a.takesMail(t) {
		t.Fatalf("every removal released: %d holds, or mail refused", n)
	}
}

// Holds are state: a snapshot carries them, and the state digest that
// cluster check-state compares covers them (a released hold changes the
// digest though the mailbox record, still marked, does not change).
func TestRemovalHoldsInSnapshotsAndDigests(t *testing.T) {
	a := removingFixture(t)
	a.raiseTo(EncodingJSON12)
	a.hold("first", true)
	a.hold("second", true)
	raw := dump(t, a.s)
	b, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Restore(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if n, err := b.RemovalHolds("a@example.com"); err != nil || n != 2 {
		t.Fatalf("restored: %d holds (%v), want 2", n, err)
	}
	if da, db := digestNow(t, a.s), digestNow(t, b); da.SHA256 != db.SHA256 {
		t.Fatalf("digests differ after restore: %+v, %+v", da, db)
	}
	before, rec := digestNow(t, a.s), mailboxRecord(t, a)
	a.hold("first", false)
	after := digestNow(t, a.s)
	if !bytes.Equal(rec, mailboxRecord(t, a)) {
		t.Fatal("the mailbox record changed; the test wants a change in the holds alone")
	}
	if before.Keys != after.Keys+1 {
		t.Fatalf("digest keys %d then %d: the released hold is not counted", before.Keys, after.Keys)
	}
}

func mailboxRecord(t *testing.T, a *applier) []byte {
	t.Helper()
	v, closer, err := a.s.db.Get(mailboxKey(mustAddr(t, "a@example.com")))
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	return bytes.Clone(v)
}
