package node

import (
	"testing"
	"time"

	"powermail/fsm"
)

// A recipient with a Unicode domain (SMTPUTF8) reaches the mailbox of
// the domain the directory holds in A-labels.
func TestResolveUnicodeDomain(t *testing.T) {
	n := newTestCluster(t, 1).leader(5 * time.Second)
	mustApply(t, n, &fsm.DomainAdd{Name: "xn--bcher-kva.example"})
	mustApply(t, n, addMailbox("u@xn--bcher-kva.example"))
	res, err := n.Resolve(ctxT(t, 5*time.Second), "u@Bücher.example")
	if err != nil || len(res.Mailboxes) != 1 || res.Mailboxes[0] != "u@xn--bcher-kva.example" {
		t.Fatalf("resolve: %+v, %v", res, err)
	}
	for in, want := range map[string]string{
		"a@example.com":    "a@example.com",
		"a@bücher.example": "a@xn--bcher-kva.example",
		"ü@example.com":    "ü@example.com", // only the domain has an ASCII form
		"a@exa mple.ü":     "a@exa mple.ü",  // no A-label form: left to be refused
	} {
		if got := asciiAddress(in); got != want {
			t.Errorf("asciiAddress(%q) = %q, want %q", in, got, want)
		}
	}
}
