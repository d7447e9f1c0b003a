package frontend_test

import (
	"strings"
	"testing"
)

// A folder under "inbox/" (a client that lowercased the name, or a user
// who typed it so) is stored under that spelling, whose parent level
// "inbox" is INBOX: RFC 9051 §5.1 makes the name INBOX case-insensitive,
// and the library writes it as INBOX on the wire. LIST showed that
// level as a missing parent beside the real INBOX, so a client was told
// of INBOX twice, the second time as \NonExistent \Noselect, and one that
// keeps the last answer could no longer open its inbox. INBOX is listed
// once, as the folder it is, with \HasChildren.
func TestIMAPListInboxOnceWithLowercaseChildren(t *testing.T) {
	const user = "inboxcase@example.com"
	_, addr := soloIMAP(t, user)
	r := dialIMAPRaw(t, addr, user)
	r.ok(`CREATE "inbox/Sub"`)
	r.ok(`CREATE "Inbox/Other/Deep"`)

	for _, cmd := range []string{
		`LIST "" "%"`,
		`LIST "" "*"`,
		`LIST "" "%" RETURN (CHILDREN SUBSCRIBED)`,
		`LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"`,
		`LIST "" "inbox"`,
		`LSUB "" "*"`,
	} {
		var inbox []string
		for _, l := range r.ok(cmd) {
			if strings.HasSuffix(l, ` "/" INBOX`) || strings.Contains(l, ` "/" INBOX (`) {
				inbox = append(inbox, l)
			}
		}
		if len(inbox) != 1 {
			t.Errorf("%s: INBOX listed %d times: %q", cmd, len(inbox), inbox)
			continue
		}
		if strings.Contains(inbox[0], `\NonExistent`) || strings.Contains(inbox[0], `\Noselect`) ||
			!strings.Contains(inbox[0], `\HasChildren`) {
			t.Errorf("%s: %q, want INBOX selectable with \\HasChildren", cmd, inbox[0])
		}
	}
	r.ok(`SELECT "inbox/Sub"`)
	r.ok(`SELECT INBOX`)
}
