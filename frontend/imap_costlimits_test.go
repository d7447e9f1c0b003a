package frontend_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"powermail/frontend"
	"powermail/node"
)

// TestIMAPSearchKeyLimit: a SEARCH is matched against every message, each
// key costs a step per message, and each BODY or TEXT key reads the whole
// message again. Within go-imap's 50 KiB command line a client could send
// thousands of keys: 1,000 BODY keys took 22 s over 300 small messages,
// kept a core busy after the client hung up, and scale with the mailbox
// and its messages' sizes. Over MaxSearchKeys keys, or MaxSearchTextKeys
// BODY and TEXT keys, a SEARCH gets NO [LIMIT] before any message is read;
// at the limits it is answered.
func TestIMAPSearchKeyLimit(t *testing.T) {
	store, user := imapMemStore(t)
	if err := store.Deliver("Subject: hello\r\n\r\nthe body\r\n", user); err != nil {
		t.Fatal(err)
	}
	cfg := frontend.IMAPConfig{MaxSearchKeys: 40, MaxSearchTextKeys: 4}
	addr := startIMAP(t, store, cfg, true)
	r := dialIMAPRaw(t, addr, user)
	r.ok("SELECT INBOX")

	// orBody is n BODY keys joined by OR (2n-1 keys): a message has to
	// be read for each of them.
	orBody := func(n int) string {
		return strings.Repeat("OR BODY zq ", n-1) + "BODY zq"
	}
	for _, c := range []struct {
		name, keys string
		refused    bool
	}{
		{"text keys at the limit", orBody(4), false},
		{"text keys over the limit", orBody(5), true},
		{"TEXT counts as BODY does", "OR " + orBody(4) + " TEXT zq", true},
		{"keys at the limit", strings.Repeat("NOT ", 39) + "SEEN", false},
		{"keys over the limit", strings.Repeat("NOT ", 40) + "SEEN", true},
		{"flags and sets count", strings.Repeat("1:* ", 20) + strings.Repeat("UNSEEN ", 21), true},
		{"thousands of keys", strings.Repeat("OR BODY zq ", 4000) + "ALL", true},
	} {
		for _, form := range []string{"SEARCH ", "UID SEARCH ", "SEARCH RETURN (COUNT) "} {
			start := time.Now()
			_, tagged := r.cmd(form + c.keys)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("%s (%s): took %v", c.name, form, took)
			}
			wantLimit(t, c.name+" ("+form+")", tagged, c.refused)
		}
	}
	// The session goes on.
	r.want("SEARCH BODY body", "* SEARCH", "1")
}

// TestIMAPFetchSectionLimit: each body section of a FETCH reads the
// message again (a section past the memory kept per message is
// streamed from the body's start), whatever little it sends: 100
// BODY.PEEK[9] of a 5 MB message took 2.4 s for 1.4 KB of response on a
// dev cluster, and a 50 KiB line holds thousands. Over MaxFetchSections
// sections (BODY, BINARY and BINARY.SIZE together) a FETCH gets NO
// [LIMIT] before anything is read or marked \Seen; at the limit it is
// answered.
func TestIMAPFetchSectionLimit(t *testing.T) {
	store, user := imapMemStore(t)
	if err := store.Deliver("Subject: hello\r\n\r\nthe body\r\n", user); err != nil {
		t.Fatal(err)
	}
	addr := startIMAP(t, store, frontend.IMAPConfig{MaxFetchSections: 4}, true)
	r := dialIMAPRaw(t, addr, user)
	r.ok("SELECT INBOX")
	sections := func(item string, n int) string {
		return strings.TrimSpace(strings.Repeat(item+" ", n))
	}
	for _, c := range []struct {
		name, items string
		refused     bool
	}{
		{"at the limit", sections("BODY.PEEK[1]", 4), false},
		{"over the limit", sections("BODY.PEEK[1]", 5), true},
		{"BINARY counts", sections("BODY.PEEK[1]", 4) + " BINARY.PEEK[1]", true},
		{"BINARY.SIZE counts", sections("BINARY.PEEK[1]", 4) + " BINARY.SIZE[1]", true},
		{"other items do not", sections("BODY.PEEK[1]", 4) + " FLAGS UID ENVELOPE BODYSTRUCTURE RFC822.SIZE", false},
		{"thousands", sections("BODY.PEEK[9]", 3500), true},
		{"without PEEK", sections("BODY[1]", 5), true},
	} {
		for _, form := range []string{"FETCH 1 ", "UID FETCH 1:* "} {
			_, tagged := r.cmd(form + "(" + c.items + ")")
			wantLimit(t, c.name+" ("+form+")", tagged, c.refused)
		}
	}
	// The refused FETCH without PEEK marked nothing \Seen.
	r.want("FETCH 1 (FLAGS)", "* 1 FETCH", "FLAGS ()")
}

// TestIMAPFailedSearchEmptiesSaved: a SEARCH RETURN (SAVE) that fails,
// refused over the key limit or on a body it cannot read, leaves "$"
// empty (RFC 5182 section 2.1), not the result of an earlier SAVE, which
// a client would then act on as if it were this search's.
func TestIMAPFailedSearchEmptiesSaved(t *testing.T) {
	store, user := imapMemStore(t)
	for i := range 2 {
		if err := store.Deliver(fmt.Sprintf("Subject: m%d\r\n\r\nbody\r\n", i), user); err != nil {
			t.Fatal(err)
		}
	}
	addr := startIMAP(t, store, frontend.IMAPConfig{MaxSearchKeys: 10}, true)
	r := dialIMAPRaw(t, addr, user)
	r.ok("SELECT INBOX")
	unreadable := func(op string) error {
		if op == "OpenBody" {
			return node.ErrBodyUnavailable
		}
		return nil
	}
	for _, c := range []struct {
		name, keys, code string
		fail             func(string) error
	}{
		{"over the key limit", strings.Repeat("UNSEEN ", 11), "NO [LIMIT]", nil},
		{"a body that cannot be read", "BODY needle", "NO [UNAVAILABLE]", unreadable},
	} {
		r.ok("SEARCH RETURN (SAVE) ALL")
		r.want("UID SEARCH UID $", "* SEARCH", "1", "2")
		store.Fail = c.fail
		if _, tagged := r.cmd("SEARCH RETURN (SAVE) " + c.keys); !strings.HasPrefix(tagged, c.code) {
			t.Fatalf("%s: %q, want %s", c.name, tagged, c.code)
		}
		store.Fail = nil
		for _, l := range r.ok("UID SEARCH UID $") {
			if strings.HasPrefix(l, "* SEARCH") && strings.TrimSpace(strings.TrimPrefix(l, "* SEARCH")) != "" {
				t.Fatalf("%s: $ after the failed SAVE: %q, want empty", c.name, l)
			}
		}
	}
}

// wantLimit checks that a command's tagged reply is NO [LIMIT] if
// refused, else OK.
func wantLimit(t *testing.T, what, tagged string, refused bool) {
	t.Helper()
	got := strings.HasPrefix(tagged, "NO [LIMIT]")
	if got != refused || (!got && !strings.HasPrefix(tagged, "OK")) {
		t.Errorf("%s: %q, want refused %v", what, tagged, refused)
	}
}
