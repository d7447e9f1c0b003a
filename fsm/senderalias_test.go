package fsm

import (
	"errors"
	"testing"
)

// SenderAlias finds the forward stored under an address, or under its
// base for a sub-address without an entry of its own; never a
// catch-all, and never for an address that is a mailbox.
func TestSenderAlias(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "amy@example.com"}, {Address: "bob@example.com"}, {Address: "info+eu@example.com"}}})
	a.must(&ForwardAdd{Address: "info@example.com", Targets: []string{"amy@example.com"}})
	a.must(&ForwardAdd{Address: "info+us@example.com", Targets: []string{"bob@example.com"}})
	a.must(&ForwardAdd{Address: "bob@example.com", Targets: []string{"amy@example.com"}, KeepCopy: true})
	a.must(&ForwardAdd{Address: "@example.com", Targets: []string{"amy@example.com"}})

	for addr, want := range map[string]string{
		"info@example.com":      "info@example.com",
		"Info+news@example.com": "info@example.com",
		"info+us@example.com":   "info+us@example.com",
		"info+eu@example.com":   "", // a mailbox of its own
		"bob@example.com":       "", // a mailbox, though it forwards
		"bob+x@example.com":     "",
		"nobody@example.com":    "", // only the catch-all
		"nobody+x@example.com":  "",
		"info@elsewhere.net":    "",
	} {
		fw, err := a.s.SenderAlias(addr)
		switch {
		case want == "" && !errors.Is(err, ErrNotFound):
			t.Errorf("%s: %+v, %v; want not found", addr, fw, err)
		case want != "" && (err != nil || fw.Address != want):
			t.Errorf("%s: %+v, %v; want %s", addr, fw, err, want)
		}
	}
	if _, err := a.s.SenderAlias("@example.com"); !errors.Is(err, ErrInvalid) {
		t.Errorf("the catch-all's own name: %v", err)
	}
}
