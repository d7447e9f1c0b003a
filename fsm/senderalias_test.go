package fsm

import (
	"errors"
	"slices"
	"testing"
)

// SenderForwards finds the forward stored under an address and the one
// under its base for a sub-address; never a catch-all, and nothing for
// an address that is a mailbox or a sub-address of one.
func TestSenderForwards(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "amy@example.com"}, {Address: "bob@example.com"}, {Address: "info+eu@example.com"}}})
	a.must(&ForwardAdd{Address: "info@example.com", Targets: []string{"amy@example.com"}})
	a.must(&ForwardAdd{Address: "info+us@example.com", Targets: []string{"bob@example.com"}})
	a.must(&ForwardAdd{Address: "bob@example.com", Targets: []string{"amy@example.com"}, KeepCopy: true})
	a.must(&ForwardAdd{Address: "bob+amy@example.com", Targets: []string{"amy@example.com"}})
	a.must(&ForwardAdd{Address: "sales+eu@example.com", Targets: []string{"amy@example.com"}})
	a.must(&ForwardAdd{Address: "@example.com", Targets: []string{"amy@example.com"}})

	for addr, want := range map[string][]string{
		"info@example.com":      {"info@example.com"},
		"Info+news@example.com": {"info@example.com"},
		"info+us@example.com":   {"info+us@example.com", "info@example.com"},
		"sales+eu@example.com":  {"sales+eu@example.com"}, // no sales@
		"info+eu@example.com":   nil,                      // a mailbox of its own
		"bob@example.com":       nil,                      // a mailbox, though it forwards
		"bob+x@example.com":     nil,
		"bob+amy@example.com":   nil, // under bob's mailbox
		"nobody@example.com":    nil, // only the catch-all
		"nobody+x@example.com":  nil,
		"info@elsewhere.net":    nil,
	} {
		fws, err := a.s.SenderForwards(addr)
		var got []string
		for _, fw := range fws {
			got = append(got, fw.Address)
		}
		switch {
		case want == nil && !errors.Is(err, ErrNotFound):
			t.Errorf("%s: %q, %v; want not found", addr, got, err)
		case want != nil && (err != nil || !slices.Equal(got, want)):
			t.Errorf("%s: %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := a.s.SenderForwards("@example.com"); !errors.Is(err, ErrInvalid) {
		t.Errorf("the catch-all's own name: %v", err)
	}
}
