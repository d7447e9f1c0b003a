package node

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

// From command encoding 13 (a new cluster's) the admin API refuses a
// mailbox name that does not show what it is with 400 and the reason,
// stores a decomposed name in NFC, and RCPT lookups and logins find it
// by either form.
func TestAdminLocalPartRules(t *testing.T) {
	c := newTestCluster(t, 1)
	n := c.leader(10 * time.Second)
	tok := string(testSecret)
	if code, body := adminDo(t, n, "POST", "/v1/domains", tok, `{"name":"example.com"}`); code != 200 {
		t.Fatalf("domain: %d %s", code, body)
	}
	for body, want := range map[string]string{
		`{"address":"a\u200bb@example.com"}`:   "U+200B, an invisible format character",
		"{\"address\":\"a\xffb@example.com\"}": "U+FFFD, the replacement character",
		`{"address":"a\u00a0b@example.com"}`:   "U+00A0, a space or separator",
	} {
		code, out := adminDo(t, n, "POST", "/v1/mailboxes", tok, body)
		var e apiError
		json.Unmarshal([]byte(out), &e)
		if code != 400 || e.Code != "invalid" || !strings.Contains(e.Message, want) {
			t.Errorf("POST %q: %d %s, want 400 invalid naming %q", body, code, out, want)
		}
	}
	code, out := adminDo(t, n, "POST", "/v1/mailboxes", tok, `{"address":"Rene\u0301@example.com","password":"pw-123456"}`)
	if code != 200 {
		t.Fatalf("decomposed name: %d %s", code, out)
	}
	code, out = adminDo(t, n, "GET", "/v1/mailboxes/"+url.PathEscape("ren\u00e9@example.com"), tok, "")
	var mb MailboxView
	json.Unmarshal([]byte(out), &mb)
	if code != 200 || mb.Address != "Ren\u00e9@example.com" {
		t.Fatalf("stored as %d %s, want its NFC", code, out)
	}
	res, err := n.Resolve(t.Context(), "rene\u0301@example.com")
	if err != nil || len(res.Mailboxes) != 1 || res.Mailboxes[0] != "Ren\u00e9@example.com" {
		t.Fatalf("RCPT by the decomposed form: %+v, %v", res, err)
	}
	login, err := n.Authenticate(t.Context(), "rene\u0301@example.com", "pw-123456")
	if err != nil || login.Address != "Ren\u00e9@example.com" {
		t.Fatalf("login by the decomposed form: %+v, %v", login, err)
	}
}
