package fsm

import (
	"errors"
	"slices"
	"testing"
)

// A forward's local target reaches, through the forward, the mailbox
// that RCPT of the same spelling reaches (Resolve): a decomposed
// "é+tag@" whose base is an old decomposed mailbox is delivered there
// by RCPT, so the forward must not store it in NFC, which would send
// it to the NFC twin added at 13 (or to the catch-all).
func TestForwardTargetGoesWhereRCPTGoes(t *testing.T) {
	a := localFixture(t, EncodingJSON12)
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: nfdE + "@example.com"}}})
	a.raiseTo(EncodingJSON13)
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: nfcE + "@example.com"}}}) // the NFC twin
	a.must(&ForwardAdd{Address: "@example.com", Targets: []string{"catch@remote.example"}})
	for i, target := range []string{
		nfdE + "+tag@example.com",   // base stored decomposed: RCPT takes it
		nfdE + "@example.com",       // stored exactly
		"o" + nfdE + "@example.com", // nothing: the catch-all either way
	} {
		direct, err := a.s.Resolve(target)
		if err != nil {
			t.Fatalf("resolve %q: %v", target, err)
		}
		src := string(rune('a'+i)) + "list@example.com"
		a.must(&ForwardAdd{Address: src, Targets: []string{target}})
		via, err := a.s.Resolve(src)
		if err != nil {
			t.Fatalf("resolve %q: %v", src, err)
		}
		if !slices.Equal(direct.Mailboxes, via.Mailboxes) || !slices.Equal(direct.External, via.External) {
			t.Errorf("target %+q: RCPT reaches %v %v, the forward %v %v", target, direct.Mailboxes, direct.External, via.Mailboxes, via.External)
		}
	}
}

// NFC is taken, in apply and in lookups, only of text the pinned table
// lets through: x/text computes one NFC for it in every Unicode version
// from the table's on (TestLocalNFCTablesNotOlder), but a code point
// unassigned in that version may get a combining class in a later one,
// and nodes whose x/text differ would store (or find) different forms.
func TestLocalNFCOnlyOfTextTheTablePasses(t *testing.T) {
	const u = "\u0378" // unassigned in Unicode 15.0.0
	a := localFixture(t, EncodingJSON12)
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "o" + nfcE + u + "@example.com"}}})
	a.raiseTo(EncodingJSON13)
	a.must(&ForwardAdd{Address: "@example.com", Targets: []string{"catch@remote.example"}})
	a.must(&ForwardAdd{Address: "list@example.com", Targets: []string{nfdE + u + "@example.com"}})
	fw, err := a.s.Forward("list@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if want := nfdE + u + "@example.com"; fw.Targets[0] != want {
		t.Errorf("target stored as %+q, want %+q as given", fw.Targets[0], want)
	}
	res, err := a.s.Resolve("o" + nfdE + u + "@example.com")
	if err != nil || len(res.Mailboxes) != 0 {
		t.Errorf("lookup of a refused text's other form: %+v, %v; want the catch-all", res, err)
	}
	if _, err := a.s.Mailbox("o" + nfdE + u + "@example.com"); err == nil {
		t.Error("login by a refused text's other form found a mailbox")
	}
}

// Sending as an address is judged on what RCPT of it reaches: from 13
// RCPT of "e\u0301+tag@" takes the NFC mailbox "\u00e9+tag@" before the
// sub-address base, so the alias "e\u0301@" (a forward stored before 13)
// does not make its owner the sender of that other account's address.
func TestSenderForwardsSeeWhatRCPTReaches(t *testing.T) {
	a := localFixture(t, EncodingJSON12)
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "amy@example.com"}}})
	a.must(&ForwardAdd{Address: nfdE + "@example.com", Targets: []string{"amy@example.com"}})
	a.raiseTo(EncodingJSON13)
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: nfcE + "+tag@example.com"}}})
	res, err := a.s.Resolve(nfdE + "+tag@example.com")
	if err != nil || !slices.Equal(res.Mailboxes, []string{nfcE + "+tag@example.com"}) {
		t.Fatalf("RCPT: %+v, %v; want the NFC mailbox", res, err)
	}
	if fws, err := a.s.SenderForwards(nfdE + "+tag@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("sender forwards of another account's address: %+v, %v; want ErrNotFound", fws, err)
	}
	if fws, err := a.s.SenderForwards(nfdE + "+x@example.com"); err != nil || len(fws) != 1 {
		t.Errorf("sub-address of the alias: %+v, %v; want its forward", fws, err)
	}
}

// A login (State.Mailbox) by a spelling finds the NFC mailbox only
// where RCPT of it would, and where MailboxAdd would take that mailbox
// for it: not when a forward is stored under the spelling itself (an
// alias made before 13), whose mail goes to the alias's targets.
func TestMailboxLookupStopsAtAForwardOfItsSpelling(t *testing.T) {
	a := localFixture(t, EncodingJSON12)
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "amy@example.com"}}})
	a.must(&ForwardAdd{Address: nfdE + "@example.com", Targets: []string{"amy@example.com"}})
	a.raiseTo(EncodingJSON13)
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: nfcE + "@example.com"}}})
	if res, err := a.s.Resolve(nfdE + "@example.com"); err != nil || !slices.Equal(res.Mailboxes, []string{"amy@example.com"}) {
		t.Fatalf("RCPT: %+v, %v; want the alias's target", res, err)
	}
	if mb, err := a.s.Mailbox(nfdE + "@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("login by the alias's spelling: %q, %v; want ErrNotFound", mb.Address, err)
	}
	// Apply makes that spelling a mailbox beside its forward, as before.
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: nfdE + "@example.com"}}})
	if mb, err := a.s.Mailbox(nfdE + "@example.com"); err != nil || mb.Address != nfdE+"@example.com" {
		t.Errorf("mailbox beside the old forward: %q, %v", mb.Address, err)
	}
}
