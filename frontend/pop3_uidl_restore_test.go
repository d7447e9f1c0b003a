package frontend_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/frontend"
	"powermail/fsm"
	"powermail/node"
	"powermail/node/nodetest"
)

// dovecotFile is one file of a Dovecot Maildir put in a tar.
type dovecotFile struct{ name, body string }

// dovecotTar writes files into a tar in their order.
func dovecotTar(t *testing.T, files []dovecotFile) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o600, Size: int64(len(f.body)), ModTime: time.Unix(1_700_000_000, 0)}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b
}

// pop3UIDLs lists the maildrop's unique-ids in message order.
func pop3UIDLs(t *testing.T, addr, box string) []string {
	t.Helper()
	cl := pop3Dial(t, addr)
	cl.login(box, "pw")
	var ids []string
	for _, l := range cl.multiLines("UIDL") {
		_, id, _ := strings.Cut(l, " ")
		ids = append(ids, id)
	}
	cl.quit()
	return ids
}

// inboxKept is the state's unique-ids kept for INBOX of box.
func inboxKept(t *testing.T, n *node.Node, box string) map[uint32]string {
	t.Helper()
	f, err := n.State().Folder(box, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	m, err := n.State().POP3UIDLs(box, f.ID, fsm.UIDRange{1, ^uint32(0)})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The Dovecot Maildir of the tests: INBOX (UIDVALIDITY 1234567890,
// 0x499602D2) with three messages, one of them flagged, and a Sent
// folder with one (POP3 does not see it). Dovecot's default
// pop3_uidl_format is %08Xu%08Xv.
var dovecotInbox = []dovecotFile{
	{"Maildir/cur/1700000001.M1P1.old:2,S", "Subject: one\r\n\r\nfirst\r\n"},
	{"Maildir/new/1700000002.M2P1.old", "Subject: two\r\n\r\nsecond\r\n"},
	{"Maildir/cur/1700000003.M3P1.old:2,FS", "Subject: three\r\n\r\nthird\r\n"},
	{"Maildir/.Sent/cur/1700000004.M4P1.old:2,S", "Subject: sent\r\n\r\nsent\r\n"},
}

func dovecotUIDList(version int, withP bool) dovecotFile {
	var b strings.Builder
	if version == 1 {
		b.WriteString("1 1234567890 43\n5 1700000001.M1P1.old:2,S\n6 1700000002.M2P1.old\n42 1700000003.M3P1.old\n")
	} else {
		b.WriteString("3 V1234567890 N43 G0123456789abcdef0123456789abcdef\n")
		p := ""
		if withP {
			p = "Pold-server-uidl-1 "
		}
		fmt.Fprintf(&b, "5 %sW20 S19 :1700000001.M1P1.old:2,S\n", p)
		b.WriteString("6 G00aa :1700000002.M2P1.old\n42 :1700000003.M3P1.old:2,FS\n")
	}
	return dovecotFile{"Maildir/dovecot-uidlist", b.String()}
}

// TestPOP3RestoreKeepsDovecotUIDLs: a mailbox restored from a Dovecot
// Maildir tar answers POP3 UIDL with the unique-ids Dovecot gave (its P
// fields, else %08Xu%08Xv of the uidlist's UID and UIDVALIDITY), with the
// uidlist before or after the messages and in either version; mail
// delivered later has the usual <UIDVALIDITY>.<UID>, and a message
// deleted by POP3 or expunged by IMAP takes its kept unique-id with it.
func TestPOP3RestoreKeepsDovecotUIDLs(t *testing.T) {
	c := nodetest.Start(t, 1)
	n := c.Nodes[0]
	_, pop := pop3Serve(t, n, pop3TestAuth(n, true), pop3TestConfig(), false)
	imapAddr := startIMAP(t, n, frontend.IMAPConfig{}, true)
	defaults := []string{"00000005499602d2", "00000006499602d2", "0000002a499602d2"}
	cases := []struct {
		name    string
		version int
		withP   bool
		first   bool
		want    []string
	}{
		{"v3-first", 3, false, true, defaults},
		{"v3-last", 3, false, false, defaults},
		{"v3-p-first", 3, true, true, append([]string{"old-server-uidl-1"}, defaults[1:]...)},
		{"v3-p-last", 3, true, false, append([]string{"old-server-uidl-1"}, defaults[1:]...)},
		{"v1-first", 1, false, true, defaults},
		{"v1-last", 1, false, false, defaults},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			box := fmt.Sprintf("moved%d@example.com", i)
			c.AddMailboxes(imapPassword, box)
			files := slices.Clone(dovecotInbox)
			if tc.first {
				files = append([]dovecotFile{dovecotUIDList(tc.version, tc.withP)}, files...)
			} else {
				files = append(files, dovecotUIDList(tc.version, tc.withP))
			}
			res, err := n.RestoreMailbox(t.Context(), box, dovecotTar(t, files), 0)
			if err != nil || res.Added != 4 || res.POP3UIDLsKept != 3 || res.POP3UIDLsNotKept+res.POP3UIDLsInvalid+res.POP3UIDLsDuplicate+res.POP3UIDLsUnlisted != 0 {
				t.Fatalf("restore: %+v, %v", res, err)
			}
			if got := pop3UIDLs(t, pop, box); !slices.Equal(got, tc.want) {
				t.Fatalf("UIDL after restore = %q, want %q", got, tc.want)
			}

			c.Deliver(0, "Subject: later\r\n\r\nnew mail\r\n", box)
			inbox, err := n.State().Folder(box, "INBOX")
			if err != nil {
				t.Fatal(err)
			}
			later := fmt.Sprintf("%d.%d", inbox.UIDValidity, inbox.UIDNext-1)
			if got := pop3UIDLs(t, pop, box); !slices.Equal(got, append(slices.Clone(tc.want), later)) {
				t.Fatalf("UIDL after a delivery = %q, want the kept ones and %q", got, later)
			}

			// POP3 DELE and QUIT: the first message and its kept id go.
			cl := pop3Dial(t, pop)
			cl.login(box, "pw")
			cl.ok("DELE 1")
			cl.quit()
			kept := inboxKept(t, n, box)
			if len(kept) != 2 || slices.Contains(slices.Collect(maps.Values(kept)), tc.want[0]) {
				t.Fatalf("after DELE and QUIT the state keeps %v", kept)
			}
			// IMAP: the next one expunged.
			ic := dialIMAPRaw(t, imapAddr, box)
			ic.ok("SELECT INBOX")
			ic.ok("STORE 1 +FLAGS (\\Deleted)")
			ic.ok("EXPUNGE")
			ic.ok("LOGOUT")
			kept = inboxKept(t, n, box)
			if !maps.Equal(kept, map[uint32]string{inbox.UIDNext - 2: tc.want[2]}) {
				t.Fatalf("after IMAP EXPUNGE the state keeps %v, want only the third's %q", kept, tc.want[2])
			}
			if got := pop3UIDLs(t, pop, box); !slices.Equal(got, []string{tc.want[2], later}) {
				t.Fatalf("UIDL at the end = %q", got)
			}
		})
	}
}

// TestPOP3RestoreBelowEncoding17KeepsNone: in a cluster at encoding 15
// the restore adds the messages with the usual unique-ids and counts the
// Dovecot ones it could not keep, in either order of the tar.
func TestPOP3RestoreBelowEncoding17KeepsNone(t *testing.T) {
	c := nodetest.StartWith(t, 1, func(cfg *node.Config) {
		cfg.BootstrapSettings = &node.BootstrapSettings{Replicas: 1, WriteQuorum: 1, CommandEncoding: fsm.EncodingJSON15}
	})
	n := c.Nodes[0]
	_, pop := pop3Serve(t, n, pop3TestAuth(n, true), pop3TestConfig(), false)
	for i, first := range []bool{true, false} {
		box := fmt.Sprintf("old%d@example.com", i)
		c.AddMailboxes("pw", box)
		files := slices.Clone(dovecotInbox)
		if first {
			files = append([]dovecotFile{dovecotUIDList(3, true)}, files...)
		} else {
			files = append(files, dovecotUIDList(3, true))
		}
		res, err := n.RestoreMailbox(t.Context(), box, dovecotTar(t, files), 0)
		if err != nil || res.Added != 4 || res.POP3UIDLsKept != 0 || res.POP3UIDLsNotKept != 3 {
			t.Fatalf("restore (uidlist first %v): %+v, %v", first, res, err)
		}
		inbox, _ := n.State().Folder(box, "INBOX")
		want := []string{}
		for u := uint32(1); u <= 3; u++ {
			want = append(want, fmt.Sprintf("%d.%d", inbox.UIDValidity, u))
		}
		if got := pop3UIDLs(t, pop, box); !slices.Equal(got, want) {
			t.Fatalf("UIDL = %q, want %q", got, want)
		}
	}
}

// TestPOP3RestoreDamagedUIDList: a unique-id RFC 1939 §7 does not allow
// is not kept, nor one a message before it in the restore has (the
// first keeps it), nor is a message missing from the list given one; the
// result counts each, and no two messages of the maildrop share one.
func TestPOP3RestoreDamagedUIDList(t *testing.T) {
	c := nodetest.Start(t, 1)
	n := c.Nodes[0]
	_, pop := pop3Serve(t, n, pop3TestAuth(n, true), pop3TestConfig(), false)
	const box = "damaged@example.com"
	c.AddMailboxes("pw", box)
	long := strings.Repeat("x", 71)
	list := dovecotFile{"Maildir/dovecot-uidlist", "3 V7 N10\n" +
		"1 Psame :a1\n2 Psame :a2\n3 P" + long + " :a3\n4 Pcaf\xc3\xa9 :a4\n"}
	files := []dovecotFile{list}
	for i := 1; i <= 5; i++ {
		files = append(files, dovecotFile{fmt.Sprintf("Maildir/cur/a%d:2,S", i), fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i)})
	}
	res, err := n.RestoreMailbox(t.Context(), box, dovecotTar(t, files), 0)
	if err != nil || res.Added != 5 || res.POP3UIDLsKept != 1 || res.POP3UIDLsDuplicate != 1 || res.POP3UIDLsInvalid != 2 || res.POP3UIDLsUnlisted != 1 {
		t.Fatalf("restore: %+v, %v", res, err)
	}
	inbox, _ := n.State().Folder(box, "INBOX")
	want := []string{"same"}
	for u := uint32(2); u <= 5; u++ {
		want = append(want, fmt.Sprintf("%d.%d", inbox.UIDValidity, u))
	}
	if got := pop3UIDLs(t, pop, box); !slices.Equal(got, want) {
		t.Fatalf("UIDL = %q, want %q", got, want)
	}

	// A list of a version this restore does not read stops nothing: its
	// messages are counted as unlisted.
	const other = "unread@example.com"
	c.AddMailboxes("pw", other)
	files[0] = dovecotFile{"Maildir/dovecot-uidlist", "2 7 10\n1 a1\n"}
	res, err = n.RestoreMailbox(t.Context(), other, dovecotTar(t, files), 0)
	if err != nil || res.Added != 5 || res.POP3UIDLsKept != 0 || res.POP3UIDLsUnlisted != 5 {
		t.Fatalf("restore with a version-2 list: %+v, %v", res, err)
	}
}

// TestPOP3RestoreAgainKeepsUIDLs: a restore run again gives the messages
// it skips as already there the unique-ids the first run could not: one
// in a cluster since raised to encoding 17, and one that broke off
// before it reached a uidlist after the messages.
func TestPOP3RestoreAgainKeepsUIDLs(t *testing.T) {
	c := nodetest.StartWith(t, 1, func(cfg *node.Config) {
		cfg.BootstrapSettings = &node.BootstrapSettings{Replicas: 1, WriteQuorum: 1, CommandEncoding: fsm.EncodingJSON15}
	})
	n := c.Nodes[0]
	_, pop := pop3Serve(t, n, pop3TestAuth(n, true), pop3TestConfig(), false)
	want := []string{"00000005499602d2", "00000006499602d2", "0000002a499602d2"}
	full := append([]dovecotFile{dovecotUIDList(3, false)}, dovecotInbox...)

	const raised = "raised@example.com"
	c.AddMailboxes("pw", raised)
	if res, err := n.RestoreMailbox(t.Context(), raised, dovecotTar(t, full), 0); err != nil || res.Added != 4 || res.POP3UIDLsNotKept != 3 {
		t.Fatalf("restore at 15: %+v, %v", res, err)
	}
	c.Apply(&fsm.SettingsSet{Settings: fsm.Settings{Replicas: 1, WriteQuorum: 1, CommandEncoding: fsm.EncodingJSON17}})
	res, err := n.RestoreMailbox(t.Context(), raised, dovecotTar(t, full), 0)
	if err != nil || res.Added != 0 || res.Duplicates != 4 || res.POP3UIDLsKept != 3 {
		t.Fatalf("restore again at 17: %+v, %v", res, err)
	}
	if got := pop3UIDLs(t, pop, raised); !slices.Equal(got, want) {
		t.Fatalf("UIDL = %q, want %q", got, want)
	}
	if res, err := n.RestoreMailbox(t.Context(), raised, dovecotTar(t, full), 0); err != nil || res.Duplicates != 4 || res.POP3UIDLsKept+res.POP3UIDLsDuplicate != 0 {
		t.Fatalf("a third restore: %+v, %v", res, err)
	}

	const cut = "cut@example.com"
	c.AddMailboxes("pw", cut)
	if res, err := n.RestoreMailbox(t.Context(), cut, dovecotTar(t, dovecotInbox), 0); err != nil || res.Added != 4 || res.POP3UIDLsKept != 0 {
		t.Fatalf("restore without the list: %+v, %v", res, err)
	}
	res, err = n.RestoreMailbox(t.Context(), cut, dovecotTar(t, append(slices.Clone(dovecotInbox), dovecotUIDList(3, false))), 0)
	if err != nil || res.Duplicates != 4 || res.POP3UIDLsKept != 3 {
		t.Fatalf("restore again with the list last: %+v, %v", res, err)
	}
	if got := pop3UIDLs(t, pop, cut); !slices.Equal(got, want) {
		t.Fatalf("UIDL = %q, want %q", got, want)
	}
}
