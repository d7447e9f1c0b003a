package frontend_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"powermail/frontend"
	"powermail/fsm"
	"powermail/node/nodetest"
)

// QUOTA (RFC 9208) through go-imap's client against a real node: one
// root "" with STORAGE in KiB for a mailbox with a quota, no root for one
// without, and SETQUOTA refused.
func TestIMAPQuota(t *testing.T) {
	c := nodetest.Start(t, 1)
	limited, free := "limited@example.com", "free@example.com"
	c.AddMailboxes(imapPassword, limited, free)
	quota := int64(10_000)
	c.Apply(&fsm.MailboxUpdate{Address: limited, QuotaBytes: &quota})
	msg := imapTestMsg("quota", strings.Repeat("x", 3000))
	c.Deliver(0, msg, limited)
	addr := startIMAP(t, c.Nodes[0], frontend.IMAPConfig{}, true)

	cl := dialIMAPAnon(t, addr)
	if caps, err := cl.Capability().Wait(); err != nil || !caps.Has(imap.CapQuota) || !caps.Has("QUOTA=RES-STORAGE") {
		t.Fatalf("capabilities %v, %v; want QUOTA and QUOTA=RES-STORAGE", caps, err)
	}
	anon := dialIMAPRaw(t, addr, "")
	if _, tagged := anon.cmd("GETQUOTAROOT INBOX"); !strings.HasPrefix(tagged, "BAD") {
		t.Fatalf("GETQUOTAROOT before login: %q", tagged)
	}
	anon.ok("CAPABILITY")
	if err := cl.Login(limited, imapPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	wantKiB := (int64(len(msg)) + 1023) / 1024
	check := func(what string, data []imapclient.QuotaData) {
		t.Helper()
		if len(data) != 1 || data[0].Root != "" {
			t.Fatalf("%s: %+v, want one root \"\"", what, data)
		}
		st, ok := data[0].Resources[imap.QuotaResourceStorage]
		if !ok || st.Usage != wantKiB || st.Limit != 10 {
			t.Fatalf("%s: STORAGE %+v, want usage %d and limit 10 KiB", what, st, wantKiB)
		}
	}
	roots, err := cl.GetQuotaRoot("INBOX").Wait()
	if err != nil {
		t.Fatal(err)
	}
	check("GETQUOTAROOT INBOX", roots)
	one, err := cl.GetQuota("").Wait()
	if err != nil || one == nil {
		t.Fatalf("GETQUOTA \"\": %v, %v", one, err)
	}
	check("GETQUOTA", []imapclient.QuotaData{*one})
	_, err = cl.GetQuota("elsewhere").Wait()
	wantIMAPCode(t, "GETQUOTA of an unknown root", err, imap.ResponseCodeNonExistent)
	err = cl.SetQuota("", map[imap.QuotaResourceType]int64{imap.QuotaResourceStorage: 1}).Wait()
	wantIMAPCode(t, "SETQUOTA", err, imap.ResponseCodeNoPerm)

	// DELETED-STORAGE (§4.2): the octets of the \Deleted messages.
	box := dialIMAPRaw(t, addr, limited)
	box.want("STATUS INBOX (DELETED-STORAGE)", "* STATUS INBOX (DELETED-STORAGE 0)")
	box.ok("SELECT INBOX")
	box.ok(`STORE 1 +FLAGS (\Deleted)`)
	deleted := fmt.Sprintf("DELETED-STORAGE %d", len(msg))
	box.want("STATUS INBOX (DELETED-STORAGE)", "* STATUS INBOX ("+deleted+")")
	box.want(`LIST "" "INBOX" RETURN (STATUS (DELETED-STORAGE))`, "* STATUS INBOX", deleted)

	raw := dialIMAPRaw(t, addr, free)
	if u := raw.ok("GETQUOTAROOT INBOX"); len(u) != 1 || u[0] != "* QUOTAROOT INBOX" {
		t.Errorf("GETQUOTAROOT without a quota: %q, want no root", u)
	}
	if _, tagged := raw.cmd(`GETQUOTA ""`); !strings.HasPrefix(tagged, "NO [NONEXISTENT]") {
		t.Errorf("GETQUOTA without a quota: %q", tagged)
	}
	if _, tagged := raw.cmd(`GETQUOTAROOT "No such folder"`); !strings.HasPrefix(tagged, "NO [NONEXISTENT]") {
		t.Errorf("GETQUOTAROOT of a folder that does not exist: %q", tagged)
	}
	if u := raw.ok("GETQUOTAROOT Sent"); len(u) != 1 || u[0] != "* QUOTAROOT Sent" {
		t.Errorf("GETQUOTAROOT Sent: %q", u)
	}
	if _, tagged := raw.cmd("GETQUOTAROOT"); !strings.HasPrefix(tagged, "BAD") {
		t.Errorf("GETQUOTAROOT without a mailbox: %q", tagged)
	}
}

// A QUOTA command pipelined after others is answered after them, as
// every IMAP command is: after a LOGIN in the same packet it is
// authenticated, and after an EXPUNGE it counts what the EXPUNGE freed.
func TestIMAPQuotaPipelined(t *testing.T) {
	c := nodetest.Start(t, 1)
	box := "pipelined@example.com"
	c.AddMailboxes(imapPassword, box)
	quota := int64(100_000)
	c.Apply(&fsm.MailboxUpdate{Address: box, QuotaBytes: &quota})
	msg := imapTestMsg("big", strings.Repeat("x", 20_000))
	c.Deliver(0, msg, box)
	full := fmt.Sprintf(`* QUOTA "" (STORAGE %d 98)`, (len(msg)+1023)/1024)
	addr := startIMAP(t, c.Nodes[0], frontend.IMAPConfig{}, true)

	raw := dialIMAPRaw(t, addr, "")
	send := func(lines ...string) {
		t.Helper()
		if _, err := raw.c.Write([]byte(strings.Join(lines, "\r\n") + "\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	// tagged reads the responses up to tag's tagged one.
	tagged := func(tag string) (untagged []string, status string) {
		t.Helper()
		for {
			l := raw.line()
			if rest, ok := strings.CutPrefix(l, tag+" "); ok {
				return untagged, rest
			}
			untagged = append(untagged, l)
		}
	}
	send(fmt.Sprintf("p1 LOGIN %q %q", box, imapPassword), "p2 GETQUOTAROOT INBOX")
	if _, st := tagged("p1"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("LOGIN: %q", st)
	}
	u, st := tagged("p2")
	if !strings.HasPrefix(st, "OK") || !slices.Contains(u, full) {
		t.Fatalf("GETQUOTAROOT pipelined after LOGIN: %q %q", u, st)
	}
	raw.ok("SELECT INBOX")
	send(`p3 STORE 1 +FLAGS.SILENT (\Deleted)`, "p4 EXPUNGE", "p5 GETQUOTA \"\"")
	for _, tag := range []string{"p3", "p4"} {
		if _, st := tagged(tag); !strings.HasPrefix(st, "OK") {
			t.Fatalf("%s: %q", tag, st)
		}
	}
	u, st = tagged("p5")
	if !strings.HasPrefix(st, "OK") || !slices.Contains(u, `* QUOTA "" (STORAGE 0 98)`) {
		t.Fatalf("GETQUOTA pipelined after EXPUNGE: %q %q", u, st)
	}
}

// GETQUOTAROOT reads a folder name in modified UTF-7 (RFC 9051 §5.1.3)
// as SELECT does: a name with "&" is checked like any other.
func TestIMAPQuotaRootModifiedUTF7(t *testing.T) {
	addr, box := collectCluster(t)
	r := dialIMAPRaw(t, addr, box)
	r.ok(`CREATE "Entw&APw-rfe"`)
	r.ok(`CREATE "a&-b"`)
	quota := `* QUOTA "" (STORAGE 4 10)`
	for _, name := range []string{`"Entw&APw-rfe"`, `a&-b`} {
		if u := r.ok("GETQUOTAROOT " + name); !slices.Equal(u, []string{"* QUOTAROOT " + name + ` ""`, quota}) {
			t.Errorf("GETQUOTAROOT %s: %q", name, u)
		}
	}
	if _, st := r.cmd(`GETQUOTAROOT "Entw&APw-rfe2"`); !strings.HasPrefix(st, "NO [NONEXISTENT]") {
		t.Errorf("GETQUOTAROOT of a missing folder with \"&\": %q", st)
	}
	if _, st := r.cmd(`GETQUOTAROOT "a&b"`); !strings.HasPrefix(st, "BAD") {
		t.Errorf("GETQUOTAROOT of a name that is not modified UTF-7: %q", st)
	}
}

// TestIMAPQuotaRootEightBitName: a folder name sent as raw UTF-8 (in a
// literal, or quoted by a client that takes UTF-8 for granted) is given
// back in QUOTAROOT as a literal: a quoted string with 8-bit octets is
// not IMAP4rev1 syntax (RFC 3501 §9), and the session has not enabled
// IMAP4rev2 or UTF8=ACCEPT.
func TestIMAPQuotaRootEightBitName(t *testing.T) {
	store, user := imapMemStore(t)
	store.SetQuota(user, 10<<10)
	addr := startIMAP(t, store, frontend.IMAPConfig{}, true)
	r := dialIMAPRaw(t, addr, user)
	r.ok(`CREATE "Pr&APY-gramm"`)
	name := "Prögramm"
	want := []string{fmt.Sprintf("* QUOTAROOT {%d}", len(name)), name + ` ""`, `* QUOTA "" (STORAGE 0 10)`}
	r.send(fmt.Sprintf("q1 GETQUOTAROOT {%d+}\r\n%s\r\n", len(name), name))
	if u, st := r.tagged("q1"); !strings.HasPrefix(st, "OK") || !slices.Equal(u, want) {
		t.Errorf("GETQUOTAROOT of a UTF-8 name in a literal: %q %q", u, st)
	}
	if u := r.ok(`GETQUOTAROOT "` + name + `"`); !slices.Equal(u, want) {
		t.Errorf("GETQUOTAROOT of a quoted UTF-8 name: %q", u)
	}
	// A 7-bit name goes back as it came.
	if u := r.ok(`GETQUOTAROOT "Pr&APY-gramm"`); !slices.Equal(u, []string{`* QUOTAROOT "Pr&APY-gramm" ""`, want[2]}) {
		t.Errorf("GETQUOTAROOT of the modified UTF-7 name: %q", u)
	}
}

// TestIMAPQuotaRootNotModifiedUTF7: what RFC 3501 §5.1.3 forbids in a
// name, a null shift ("-&" while in BASE64) or a control character
// written directly, gets BAD from GETQUOTAROOT, and is not looked up as
// some other name: SELECT refuses it too (the library's decoder does,
// with NO [SERVERBUG], which imap_quirks.go makes NO [NONEXISTENT]).
func TestIMAPQuotaRootNotModifiedUTF7(t *testing.T) {
	store, user := imapMemStore(t)
	store.SetQuota(user, 10<<10)
	addr := startIMAP(t, store, frontend.IMAPConfig{}, true)
	r := dialIMAPRaw(t, addr, user)
	r.ok(`CREATE "&AOQA9g-"`) // "äö", one run
	r.ok(`GETQUOTAROOT "&AOQA9g-"`)
	for _, name := range []string{`"&AOQ-&APY-"`, "\"a\tb\""} {
		if _, st := r.cmd("SELECT " + name); strings.HasPrefix(st, "OK") {
			t.Errorf("SELECT %q: %q, want it refused", name, st)
		}
		if _, st := r.cmd("GETQUOTAROOT " + name); !strings.HasPrefix(st, "BAD") {
			t.Errorf("GETQUOTAROOT %q: %q, want BAD", name, st)
		}
	}
}
