package node

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"powermail/fsm"
)

// The failure report on mailboxes refused at commit names each RCPT
// that asked (no NOTIFY, or one with FAILURE) and lost a mailbox, once,
// with the status of its first refused mailbox; RET=FULL returns the
// whole of a submitted message; a commit that kept the message nowhere
// gets no notice (the reply says it).
func TestRefusedReport(t *testing.T) {
	rejected := map[string]error{
		"a@example.com": fmt.Errorf("%w: folder INBOX has given its last UID", ErrFolderFull),
		"b@example.com": fmt.Errorf("%w: x", ErrUnknownRecipient),
		"c@example.com": fmt.Errorf("%w: x", ErrUnknownRecipient),
		"d@example.com": fmt.Errorf("%w: x", ErrUnknownRecipient),
	}
	msg := Message{From: "s@example.com", Mailboxes: []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"},
		Submitted: true, Notify: &DSNRequest{EnvID: "E1", Ret: "FULL", Failure: []NotifyRcpt{
			{Address: "A@example.com", ORCPT: "rfc822; A@example.com", Mailboxes: []string{"a@example.com"}},
			{Address: "b@example.com", Notify: "NEVER", Mailboxes: []string{"b@example.com"}},
			{Address: "c@example.com", Notify: "SUCCESS,DELAY", Mailboxes: []string{"c@example.com"}},
			{Address: "team@example.com", Notify: "DELAY,FAILURE", Mailboxes: []string{"d@example.com", "e@example.com"}, External: 1},
			{Address: "e@example.com", Mailboxes: []string{"e@example.com"}},
		}}}
	rep := refusedReport(&fsm.Deliver{ID: "d1", Hash: "h", Size: 100}, msg, DeliveryResult{Rejected: rejected})
	if rep.kind != dsnFailed || rep.envID != "E1" || rep.from != "s@example.com" || !rep.full || rep.bare || len(rep.rcpts) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if r := rep.rcpts[0]; r.address != "A@example.com" || r.orcpt != "rfc822; A@example.com" || r.status != "5.2.2" {
		t.Errorf("first recipient %+v", r)
	}
	if r := rep.rcpts[1]; r.address != "team@example.com" || r.status != "5.1.1" || !strings.Contains(r.err, "1 of the 3") ||
		strings.Contains(r.err, "@") {
		t.Errorf("forward %+v", r)
	}
	msg.Submitted = false
	if rep := refusedReport(&fsm.Deliver{ID: "d1", Hash: "h", Size: 100}, msg, DeliveryResult{Rejected: rejected}); rep.full || rep.bare {
		t.Errorf("port 25 failure returns full=%v bare=%v, want its header section", rep.full, rep.bare)
	}

	if !keptSomewhere(msg, DeliveryResult{Rejected: rejected}) {
		t.Error("e@ took the message, yet kept nowhere")
	}
	only := Message{Mailboxes: []string{"a@example.com"}}
	if keptSomewhere(only, DeliveryResult{Rejected: rejected}) || !keptSomewhere(only, DeliveryResult{Rejected: rejected, Queued: "q1"}) {
		t.Error("kept somewhere: wrong for a refused mailbox, with and without a queue entry")
	}
}

// Every refusal at commit is a final failure in a notice: the message
// was accepted and is not tried again.
func TestRefusalStatus(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: x", ErrUnknownRecipient), "5.1.1"},
		{fmt.Errorf("%w: x", ErrMailboxRemoving), "5.2.1"},
		{fmt.Errorf("%w: x", ErrFolderFull), "5.2.2"},
		{rejection("locked", "x"), "5.0.0"},
		{errors.New("other"), "5.0.0"},
	} {
		if got, text := refusalStatus(c.err); got != c.want || text == "" {
			t.Errorf("%v: status %s %q, want %s", c.err, got, text, c.want)
		}
	}
	for code, want := range map[string]string{"not_found": "5.1.1", "being_removed": "5.2.1", "folder_full": "5.2.2"} {
		if got, _ := refusalStatus(rejection(code, "x")); got != want {
			t.Errorf("fsm code %s: status %s, want %s", code, got, want)
		}
	}
}
