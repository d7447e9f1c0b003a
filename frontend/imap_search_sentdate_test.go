package frontend_test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// SENTBEFORE, SENTON and SENTSINCE compare the Date: header (RFC 3501
// section 6.4.4; RFC 9051 section 6.4.4: "disregarding time and
// timezone"). A message without one, or with one that cannot be read,
// has no sent date at all, and matched none of them: a user looking
// for last week's mail did not find a message a broken script sent.
// Such a message is compared by its internal date instead, as Dovecot
// does; a message with a readable Date: is still compared by it.
func TestIMAPSearchSentDateFallsBackToInternalDate(t *testing.T) {
	const user = "sentdate@example.com"
	c, addr := soloIMAP(t, user)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Noon in the server's zone, in which internal dates are compared.
	internal := time.Date(2020, 3, 15, 12, 0, 0, 0, time.Local)
	for _, m := range []string{
		"From: a@example.org\r\nSubject: no date\r\n\r\nbody\r\n",
		"From: a@example.org\r\nSubject: bad date\r\nDate: sometime last week\r\n\r\nbody\r\n",
		"From: a@example.org\r\nSubject: dated\r\nDate: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\nbody\r\n",
	} {
		if _, err := c.Nodes[0].Append(ctx, user, "INBOX", nil, internal, strings.NewReader(m)); err != nil {
			t.Fatal(err)
		}
	}
	r := dialIMAPRaw(t, addr, user)
	r.ok("EXAMINE INBOX")
	for _, tc := range []struct{ keys, want string }{
		{"SENTON 15-Mar-2020", "* SEARCH 1 2"},
		{"SENTSINCE 15-Mar-2020", "* SEARCH 1 2"},
		{"SENTSINCE 16-Mar-2020", "* SEARCH"},
		{"SENTBEFORE 16-Mar-2020", "* SEARCH 1 2 3"},
		{"SENTBEFORE 15-Mar-2020", "* SEARCH 3"},
		{"SENTON 2-Jan-2006", "* SEARCH 3"},
		{"NOT SENTON 15-Mar-2020", "* SEARCH 3"},
	} {
		u := r.ok("SEARCH " + tc.keys)
		if len(u) != 1 || strings.TrimSpace(u[0]) != tc.want {
			t.Errorf("SEARCH %s: %q, want %q", tc.keys, u, tc.want)
		}
	}
}
