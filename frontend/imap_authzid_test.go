package frontend_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"powermail/frontend"
	"powermail/node/nodetest"
)

// AUTHENTICATE PLAIN (RFC 4616) may name an authorization identity:
// empty, or the user's own account. SMTP submission and POP3 take it
// however the address is spelt, as the login itself does; IMAP took it
// only octet for octet (go-imap's default), so a client that wrote the
// identity as the user typed it and the login name as configured was
// refused over IMAP alone. Another user's identity stays refused.
func TestIMAPAuthenticatePlainIdentitySpelling(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.AddMailboxes(imapPassword, "authz@example.com", "other@example.com")
	addr := startIMAP(t, c.Nodes[0], frontend.IMAPConfig{PollInterval: time.Second}, true)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		authz, authc string
		ok           bool
	}{
		{"", "authz@example.com", true},
		{"authz@example.com", "authz@example.com", true},
		{"Authz@Example.COM", "authz@example.com", true},
		{"authz@example.com", "AUTHZ@example.com", true},
		{"other@example.com", "authz@example.com", false},
	} {
		r := dialIMAPRaw(t, addr, "")
		_, tagged := r.cmd("AUTHENTICATE PLAIN " + b64(tc.authz+"\x00"+tc.authc+"\x00"+imapPassword))
		if got := strings.HasPrefix(tagged, "OK"); got != tc.ok {
			t.Errorf("authzid %q, authcid %q: %s", tc.authz, tc.authc, tagged)
		}
		if !tc.ok && !strings.Contains(tagged, "[AUTHORIZATIONFAILED]") {
			t.Errorf("authzid %q, authcid %q: %s, want NO [AUTHORIZATIONFAILED]", tc.authz, tc.authc, tagged)
		}
	}
}
