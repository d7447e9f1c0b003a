package fsm

import (
	"errors"
	"strings"
	"testing"
)

// A domain that still has mailboxes or forwards is not removed, and the
// refusal names one of each kind that is left, so the operator knows
// where to start instead of listing the whole domain to find out.
func TestDomainRemoveNamesWhatIsLeft(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "Bob@example.com"}}})
	a.must(&ForwardAdd{Address: "team@example.com", Targets: []string{"bob@example.com"}})
	res := a.apply(&DomainRemove{Name: "example.com"})
	if !errors.Is(res.Err, ErrNotEmpty) || !strings.Contains(res.Err.Error(), "mailbox bob@example.com") {
		t.Fatalf("remove with a mailbox and a forward left: %v, want ErrNotEmpty naming mailbox bob@example.com", res.Err)
	}
	a.must(&MailboxRemove{Address: "bob@example.com"})
	res = a.apply(&DomainRemove{Name: "example.com"})
	if !errors.Is(res.Err, ErrNotEmpty) || !strings.Contains(res.Err.Error(), "forward team@example.com") {
		t.Fatalf("remove with a forward left: %v, want ErrNotEmpty naming forward team@example.com", res.Err)
	}
	a.must(&ForwardRemove{Address: "team@example.com"})
	a.must(&DomainRemove{Name: "example.com"})
}
