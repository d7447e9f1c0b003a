package fsm

import (
	"errors"
	"math"
	"testing"
)

// raiseTo sets the cluster's command encoding to enc, as an operator's
// raise does (the deliveryFixture's R and W).
func (a *applier) raiseTo(enc int) {
	a.t.Helper()
	if r := a.applyAs(&SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: enc}}, enc); r.Err != nil {
		a.t.Fatalf("raise to %d: %v", enc, r.Err)
	}
}

// setUIDNext rewrites a folder's UIDNEXT behind the applier's back, as
// four billion deliveries would have left it.
func setUIDNext(t *testing.T, a *applier, addr, folder string, next uint32) {
	t.Helper()
	f, err := a.s.Folder(addr, folder)
	if err != nil {
		t.Fatal(err)
	}
	f.UIDNext, f.LowUID = next, next
	raw, err := encodeRecord(f)
	if err != nil {
		t.Fatal(err)
	}
	plantRecord(t, a.s, folderKey(mustAddr(t, addr), f.Name), raw)
}

func uidNext(t *testing.T, a *applier, addr, folder string) uint32 {
	t.Helper()
	f, err := a.s.Folder(addr, folder)
	if err != nil {
		t.Fatal(err)
	}
	return f.UIDNext
}

// A folder's UIDs are 32-bit and strictly ascending (RFC 9051
// §2.3.1.1), and its UIDNEXT can be no more than 2^32-1 either, so the
// last UID a folder can give is 2^32-2. From the gated encoding a
// delivery, an append or a copy that would need one past it refuses that
// folder (ErrFolderFull) and writes nothing there; the other mailboxes
// of a delivery still get the message.
func TestUIDsUsedUpRefuseTheFolder(t *testing.T) {
	a := deliveryFixture(t)
	a.raiseTo(gatedEncoding)
	a.must(&FolderCreate{Mailbox: "a@example.com", Name: "Archive"})
	setUIDNext(t, a, "a@example.com", "INBOX", math.MaxUint32-1)

	deliver := func(id string) DeliverResult {
		t.Helper()
		r := a.apply(&Deliver{ID: id, Hash: bodyHash(id), Size: 10, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com", "b@example.com"}})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r.Value.(DeliverResult)
	}
	if res := deliver("d1"); res.UIDs["a@example.com"] != math.MaxUint32-1 {
		t.Fatalf("the last UID: %+v, want %d", res, uint32(math.MaxUint32-1))
	}
	if got := uidNext(t, a, "a@example.com", "INBOX"); got != math.MaxUint32 {
		t.Fatalf("UIDNEXT after the last UID: %d", got)
	}
	res := deliver("d2")
	if res.Rejected["a@example.com"] != "folder_full" || res.UIDs["b@example.com"] == 0 {
		t.Fatalf("delivery past the last UID: %+v, want a@ refused as folder_full and b@ delivered", res)
	}
	if got := uidNext(t, a, "a@example.com", "INBOX"); got != math.MaxUint32 {
		t.Fatalf("UIDNEXT after a refused delivery: %d", got)
	}
	mb, err := a.s.Mailbox("a@example.com")
	if err != nil || mb.Messages != 1 {
		t.Fatalf("a@ holds %d messages (%v), want 1", mb.Messages, err)
	}

	r := a.apply(&Deliver{Hash: bodyHash("app"), Size: 10, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}, Folder: "INBOX"})
	if r.Err != nil || r.Value.(DeliverResult).Rejected["a@example.com"] != "folder_full" {
		t.Fatalf("an APPEND past the last UID: %+v, %v", r.Value, r.Err)
	}

	// A copy that needs two UIDs where one is left fails whole (RFC
	// 9051 §6.4.7), a MOVE too, and the source keeps its message.
	setUIDNext(t, a, "a@example.com", "Archive", math.MaxUint32-1)
	a.must(&FolderCreate{Mailbox: "a@example.com", Name: "Work"})
	for _, body := range []string{"w1", "w2"} {
		a.must(&Deliver{Hash: bodyHash(body), Size: 10, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}, Folder: "Work"})
	}
	for _, move := range []bool{false, true} {
		c := &Copy{Mailbox: "a@example.com", From: "Work", To: "Archive", UIDs: []UIDRange{{1, math.MaxUint32}}, Move: move}
		if r := a.apply(c); !errors.Is(r.Err, ErrFolderFull) {
			t.Fatalf("copy (move %v) of 2 messages into 1 UID: %v, want ErrFolderFull", move, r.Err)
		}
	}
	if got := uidNext(t, a, "a@example.com", "Archive"); got != math.MaxUint32-1 {
		t.Fatalf("Archive's UIDNEXT after refused copies: %d", got)
	}
	if msgs, err := a.s.Messages("a@example.com", "Work", 0, 0); err != nil || len(msgs) != 2 {
		t.Fatalf("Work after a refused MOVE: %d messages, %v", len(msgs), err)
	}
	one := &Copy{Mailbox: "a@example.com", From: "Work", To: "Archive", UIDs: []UIDRange{{1, 1}}}
	if r := a.apply(one); r.Err != nil || r.Value.(CopyResult).Dst[0] != math.MaxUint32-1 {
		t.Fatalf("a copy into the last UID: %+v, %v", r.Value, r.Err)
	}
}

// Below the gated encoding apply is as it was, on every replica: UIDNEXT
// wraps to 0 after the UID 2^32-1, and the next message gets UID 0.
func TestUIDsPastTheTopBelowTheGate(t *testing.T) {
	a := deliveryFixture(t)
	a.raiseTo(EncodingJSON9)
	setUIDNext(t, a, "a@example.com", "INBOX", math.MaxUint32)
	for _, want := range []uint32{math.MaxUint32, 0} {
		r := a.apply(&Deliver{Hash: bodyHash("x"), Size: 10, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
		if r.Err != nil || r.Value.(DeliverResult).UIDs["a@example.com"] != want {
			t.Fatalf("below the gate: %+v, %v, want UID %d", r.Value, r.Err, want)
		}
	}
}
