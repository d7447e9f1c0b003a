package node

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

// A request body over the admin API's limit is answered 413 with the
// API's JSON error, not 400: the caller's request is not malformed, only
// too large, and must be split.
func TestAdminBodyOverLimitIs413(t *testing.T) {
	_, n := oneNodeWithMailboxes(t, 0)
	body := `{"name":"` + strings.Repeat("x", maxAdminBody) + `"}`
	code, out := adminDo(t, n, "POST", "/v1/domains", string(testSecret), body)
	var e apiError
	if code != 413 || json.Unmarshal([]byte(out), &e) != nil || e.Code != "too_large" {
		t.Fatalf("a body of %d bytes: %d %.200s", len(body), code, out)
	}
}

// POST /v1/settings changes only the fields the request names: a caller
// that leaves out max_voters keeps the voter cap. The result is checked
// against the current values of the fields left out, and a request that
// names no field is refused.
func TestAdminSettingsPartialUpdate(t *testing.T) {
	_, n := oneNodeWithMailboxes(t, 0)
	tok := string(testSecret)
	cur, err := n.State().Settings()
	if err != nil || cur.MaxVoters == 0 || cur.CommandEncoding == 0 {
		t.Fatalf("a new cluster's settings %+v (%v): want a voter cap and an encoding", cur, err)
	}
	settings := func() fsm.Settings {
		t.Helper()
		s, err := n.State().Settings()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if code, out := adminDo(t, n, "POST", "/v1/settings", tok, `{"write_quorum":1}`); code != 200 {
		t.Fatalf("write_quorum only: %d %s", code, out)
	}
	want := cur
	want.WriteQuorum = 1
	if got := settings(); got != want {
		t.Fatalf("after write_quorum 1: %+v, want %+v", got, want)
	}
	if code, out := adminDo(t, n, "POST", "/v1/settings", tok, `{"max_voters":3,"partial":true}`); code != 200 { // as the CLI sends it
		t.Fatalf("max_voters only: %d %s", code, out)
	}
	want.MaxVoters = 3
	if got := settings(); got != want {
		t.Fatalf("after max_voters 3: %+v, want %+v", got, want)
	}
	// Checked with the current replicas (2): refused, nothing changes.
	if code, out := adminDo(t, n, "POST", "/v1/settings", tok, `{"write_quorum":3}`); code != 400 || !strings.Contains(out, "replicas (2)") {
		t.Fatalf("write_quorum above the current replicas: %d %s", code, out)
	}
	for _, body := range []string{`{}`, `{"max_voters":null}`, `{"partial":true}`} {
		if code, out := adminDo(t, n, "POST", "/v1/settings", tok, body); code != 400 || !strings.Contains(out, "no setting") {
			t.Fatalf("%s: %d %s", body, code, out)
		}
	}
	if got := settings(); got != want {
		t.Fatalf("refused requests changed the settings: %+v, want %+v", got, want)
	}
	// Every field given, as callers before partial updates sent them.
	full := `{"replicas":2,"write_quorum":2,"command_encoding":` + itoa(cur.CommandEncoding) + `,"max_voters":5}`
	if code, out := adminDo(t, n, "POST", "/v1/settings", tok, full); code != 200 {
		t.Fatalf("every field: %d %s", code, out)
	}
	if got := settings(); got != cur {
		t.Fatalf("after every field: %+v, want %+v", got, cur)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// A batch import whose outcome was hidden can be resumed: with
// skip_existing a mailbox that exists with the row's password is skipped
// and counted, and one that exists with another password stops the batch
// (it was not made by this import, or its password changed since), so
// that the operator never takes the file's password for the one in force.
func TestAdminBatchSkipExisting(t *testing.T) {
	_, n := oneNodeWithMailboxes(t, 0)
	tok := string(testSecret)
	h1, _ := fsm.HashPassword("one")
	h2, _ := fsm.HashPassword("two")
	row := func(addr, field, value string) string {
		return `{"address":"` + addr + `","` + field + `":"` + value + `"}`
	}
	batch := func(skip bool, rows ...string) (int, string) {
		body := `{"mailboxes":[` + strings.Join(rows, ",") + `]`
		if skip {
			body += `,"skip_existing":true`
		}
		return adminDo(t, n, "POST", "/v1/mailboxes/batch", tok, body+"}")
	}
	result := func(code int, out string) ImportResult {
		t.Helper()
		var res ImportResult
		if code != 200 || json.Unmarshal([]byte(out), &res) != nil {
			t.Fatalf("batch: %d %s", code, out)
		}
		return res
	}
	if code, out := batch(false, row("a@example.com", "password_hash", h1), row("p@example.com", "password", "pw")); code != 200 {
		t.Fatalf("first batch: %d %s", code, out)
	}
	rerun := []string{row("a@example.com", "password_hash", h1), row("p@example.com", "password", "pw"), row("b@example.com", "password_hash", h2)}
	if code, out := batch(false, rerun...); code != 409 {
		t.Fatalf("rerun without skip_existing: %d %s", code, out)
	}
	if res := result(batch(true, rerun...)); res != (ImportResult{Created: 1, Skipped: 2}) {
		t.Fatalf("rerun with skip_existing: %+v, want 1 created and 2 skipped", res)
	}
	if mb, err := n.State().Mailbox("b@example.com"); err != nil || mb.PasswordHash != h2 {
		t.Fatalf("b@example.com: %+v %v", mb, err)
	}
	if res := result(batch(true, rerun...)); res != (ImportResult{Skipped: 3}) {
		t.Fatalf("third run: %+v, want 3 skipped", res)
	}
	for _, r := range []string{row("a@example.com", "password_hash", h2), row("p@example.com", "password", "other")} {
		code, out := batch(true, row("c@example.com", "password_hash", h1), r)
		if code != 409 || !strings.Contains(out, "another password") {
			t.Fatalf("an existing mailbox with another password: %d %s", code, out)
		}
	}
	if _, err := n.State().Mailbox("c@example.com"); err == nil {
		t.Fatal("a refused batch created c@example.com")
	}
	if mb, err := n.State().Mailbox("a@example.com"); err != nil || mb.PasswordHash != h1 {
		t.Fatalf("a@example.com's password changed: %v", err)
	}
}

// skip_existing checks a row's password against the stored hash within
// the node's password memory budget (Config.PasswordMemory), as a login
// does: a rerun of an import given passwords costs an argon2 check per
// existing row, which must wait its turn behind the logins in flight,
// and give up when the request ends, not run beside them unbounded.
func TestAdminBatchSkipExistingWaitsForThePasswordBudget(t *testing.T) {
	_, n := oneNodeWithMailboxes(t, 0)
	rows := []MailboxRequest{{Address: "p@example.com", Password: "pw"}}
	if code, out := adminDo(t, n, "POST", "/v1/mailboxes/batch", string(testSecret), `{"mailboxes":[{"address":"p@example.com","password":"pw"}]}`); code != 200 {
		t.Fatalf("first batch: %d %s", code, out)
	}
	if err := n.passwords.Acquire(ctxT(t, time.Second), n.cfg.PasswordMemory); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, _, err := n.skipExisting(short, rows); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("with the whole budget taken: %v, want ErrUnavailable once the request ends", err)
	}
	n.passwords.Release(n.cfg.PasswordMemory)
	keep, skipped, err := n.skipExisting(ctxT(t, 10*time.Second), rows)
	if err != nil || len(keep) != 0 || skipped != 1 {
		t.Fatalf("with the budget free: %v %d %v", keep, skipped, err)
	}
}
