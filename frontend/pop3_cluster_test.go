package frontend_test

import (
	"fmt"
	"powermail/frontend/internal/testtls"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"powermail/node/nodetest"
)

// TestPOP3Cluster runs POP3 servers on every node of one real three-node
// cluster (raft over loopback, Pebble on disk) and checks the promises
// that need a cluster: any node, same answers; deletions committed by
// QUIT on one node are gone on all; a dropped session commits nothing;
// the maildrop lock is cluster-wide. Subtests share the cluster and use
// a mailbox each.
func TestPOP3Cluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := nodetest.Start(t, 3)
	boxes := []string{"retr", "uidl", "dele", "drop", "lock", "top", "lines", "plain", "tls", "alice", "others", "seen", "unseen"}
	for i := range boxes {
		boxes[i] += "@example.com"
	}
	c.AddMailboxes("pw", boxes...)
	c.AddMailboxes("bobpw", "bob@example.com")

	servers := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		cfg := pop3TestConfig()
		cfg.ServerID = n.ID()
		_, servers[i] = pop3Serve(t, n, pop3TestAuth(n, true), cfg, false)
	}
	// A server that does not accept passwords in the clear, with STLS.
	tlsCfg, roots := testtls.Config(t)
	strictCfg := pop3TestConfig()
	strictCfg.TLS = tlsCfg
	_, strict := pop3Serve(t, c.Nodes[1], pop3TestAuth(c.Nodes[1], false), strictCfg, false)
	// One that leaves \Seen alone (--pop3-keep-unseen).
	keepCfg := pop3TestConfig()
	keepCfg.KeepUnseen = true
	_, keepUnseen := pop3Serve(t, c.Nodes[2], pop3TestAuth(c.Nodes[2], true), keepCfg, false)

	login := func(t *testing.T, i int, user string) *pop3Client {
		t.Helper()
		cl := pop3Dial(t, servers[i])
		cl.login(user, "pw")
		return cl
	}

	t.Run("RetrOnOtherNode", func(t *testing.T) {
		raw := "From: a@example.net\r\nSubject: dots\r\n\r\nline\r\n.leading dot\r\n..two\r\n.\r\nend\r\n"
		c.Deliver(0, raw, "retr@example.com")
		cl := login(t, 2, "retr@example.com")
		if got := cl.ok("STAT"); got != fmt.Sprintf("+OK 1 %d", len(raw)) {
			t.Errorf("STAT %q", got)
		}
		if got := cl.ok("LIST 1"); got != fmt.Sprintf("+OK 1 %d", len(raw)) {
			t.Errorf("LIST 1 %q", got)
		}
		// On the wire every line that starts with a dot has one more.
		cl.send("RETR 1")
		if r := cl.readLine(); r != fmt.Sprintf("+OK %d octets", len(raw)) {
			t.Fatalf("RETR status %q", r)
		}
		var wire []string
		for l := cl.readLine(); l != "."; l = cl.readLine() {
			wire = append(wire, l)
		}
		want := []string{"From: a@example.net", "Subject: dots", "", "line", "..leading dot", "...two", "..", "end"}
		if !slices.Equal(wire, want) {
			t.Errorf("RETR wire lines\n got %q\nwant %q", wire, want)
		}
		if _, body := cl.multi("RETR 1"); body != raw {
			t.Errorf("RETR content %q, want %q", body, raw)
		}
		cl.quit()
	})

	t.Run("UIDLSameEverywhere", func(t *testing.T) {
		for i := range 3 {
			c.Deliver(i, fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i), "uidl@example.com")
		}
		var first []string
		for i := range servers {
			cl := login(t, i, "uidl@example.com")
			got := cl.multiLines("UIDL")
			cl.quit()
			if len(got) != 3 {
				t.Fatalf("node %d UIDL %q", i, got)
			}
			seen := map[string]bool{}
			for _, l := range got {
				_, id, _ := strings.Cut(l, " ")
				if !regexp.MustCompile(`^[0-9]+\.[0-9]+$`).MatchString(id) || len(id) > 70 || seen[id] {
					t.Errorf("node %d: bad or repeated unique-id in %q", i, l)
				}
				seen[id] = true
			}
			if first == nil {
				first = got
			} else if !slices.Equal(got, first) {
				t.Errorf("node %d UIDL %q, node 0 said %q", i, got, first)
			}
		}
	})

	t.Run("DeleQuitGoneEverywhere", func(t *testing.T) {
		c.Deliver(0, "Subject: a\r\n\r\na\r\n", "dele@example.com")
		c.Deliver(2, "Subject: b\r\n\r\nb\r\n", "dele@example.com")
		cl := login(t, 1, "dele@example.com")
		ids := cl.multiLines("UIDL")
		cl.ok("DELE 1")
		cl.quit()
		for _, i := range []int{0, 2, 1} {
			cl := login(t, i, "dele@example.com")
			if got := cl.multiLines("UIDL"); !slices.Equal(got, []string{"1 " + strings.Fields(ids[1])[1]}) {
				t.Errorf("node %d after DELE+QUIT: UIDL %q (was %q)", i, got, ids)
			}
			if _, body := cl.multi("RETR 1"); body != "Subject: b\r\n\r\nb\r\n" {
				t.Errorf("node %d RETR 1 %q", i, body)
			}
			cl.quit()
		}
	})

	t.Run("DeleDropKeeps", func(t *testing.T) {
		c.Deliver(1, "Subject: keep\r\n\r\nkeep\r\n", "drop@example.com")
		cl := login(t, 2, "drop@example.com")
		cl.ok("DELE 1")
		cl.conn.Close() // no QUIT: RFC 1939 §6, nothing is removed
		var again *pop3Client
		pop3Eventually(t, "maildrop unlocked after drop", func() bool {
			again = pop3Dial(t, servers[0])
			again.ok("USER drop@example.com")
			if strings.HasPrefix(again.cmd("PASS pw"), "+OK") {
				return true
			}
			again.conn.Close()
			return false
		})
		if got := again.ok("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
			t.Errorf("after dropped DELE: %q", got)
		}
		again.quit()
	})

	t.Run("LockAcrossNodes", func(t *testing.T) {
		a := login(t, 0, "lock@example.com")
		b := pop3Dial(t, servers[2])
		b.ok("USER lock@example.com")
		b.fail("PASS pw", "IN-USE")
		b.fail("STAT", "")
		a.quit()
		b.login("lock@example.com", "pw")
		b.quit()
	})

	t.Run("TOP", func(t *testing.T) {
		c.Deliver(0, "Subject: top\r\nX-A: 1\r\n\r\nb1\r\n.b2\r\nb3\r\nb4\r\n", "top@example.com")
		cl := login(t, 1, "top@example.com")
		if _, got := cl.multi("TOP 1 2"); got != "Subject: top\r\nX-A: 1\r\n\r\nb1\r\n.b2\r\n" {
			t.Errorf("TOP 1 2 = %q", got)
		}
		if _, got := cl.multi("TOP 1 0"); got != "Subject: top\r\nX-A: 1\r\n\r\n" {
			t.Errorf("TOP 1 0 = %q", got)
		}
		cl.quit()
	})

	t.Run("LongLinesAndBadCommands", func(t *testing.T) {
		c.Deliver(0, "Subject: l\r\n\r\nl\r\n", "lines@example.com")
		cl := pop3Dial(t, servers[2])
		cl.fail("RETR 1", "")
		cl.fail("XYZZY", "")
		cl.fail("USER "+strings.Repeat("x", 5000), "")
		cl.login("lines@example.com", "pw")
		cl.fail("LIST 1 2", "")
		cl.fail("DELE", "")
		cl.fail("RETR 2", "")
		cl.fail(strings.Repeat("N", 3000), "")
		cl.ok("NOOP")
		cl.quit()
	})

	t.Run("AuthPlain", func(t *testing.T) {
		cl := pop3Dial(t, servers[1])
		cl.fail("AUTH PLAIN "+pop3Plain("", "plain@example.com", "nope"), "AUTH")
		cl.ok("AUTH PLAIN " + pop3Plain("", "plain@example.com", "pw"))
		cl.quit()
		cl = pop3Dial(t, servers[2])
		if r := cl.cmd("AUTH PLAIN"); r != "+ " {
			t.Fatalf("challenge %q", r)
		}
		cl.ok(pop3Plain("plain@example.com", "plain@example.com", "pw"))
		cl.quit()
	})

	t.Run("InsecureRefused", func(t *testing.T) {
		c.Deliver(2, "Subject: tls\r\n\r\ntls\r\n", "tls@example.com")
		cl := pop3Dial(t, strict)
		if caps := cl.multiLines("CAPA"); slices.Contains(caps, "USER") || !slices.Contains(caps, "STLS") {
			t.Errorf("CAPA before STLS: %q", caps)
		}
		cl.fail("USER tls@example.com", "AUTH")
		cl.fail("AUTH PLAIN "+pop3Plain("", "tls@example.com", "pw"), "AUTH")
		cl.startTLS(roots)
		cl.login("tls@example.com", "pw")
		if _, body := cl.multi("RETR 1"); body != "Subject: tls\r\n\r\ntls\r\n" {
			t.Errorf("RETR over STLS %q", body)
		}
		cl.quit()
	})

	// RFC 1939 §4: message numbers, sizes and unique-ids hold for the
	// whole session, whatever other sessions do to the maildrop
	// meanwhile (IMAP here, through the node on other cluster members);
	// QUIT then removes only what this session deleted and still finds
	// there: a message expunged elsewhere is not an error, one moved to
	// another folder stays there, and new mail stays.
	t.Run("ChangesElsewhereDuringSession", func(t *testing.T) {
		const box = "others@example.com"
		for i := 1; i <= 4; i++ {
			c.Deliver(i%3, fmt.Sprintf("Subject: o%d\r\n\r\nbody %d\r\n", i, i), box)
		}
		cl := login(t, 1, box)
		stat, list, uidl := cl.ok("STAT"), cl.multiLines("LIST"), cl.multiLines("UIDL")
		uidOf := func(n int) uint32 {
			t.Helper()
			_, id, _ := strings.Cut(uidl[n-1], " ")
			_, u, _ := strings.Cut(id, ".")
			v, err := strconv.ParseUint(u, 10, 32)
			if err != nil {
				t.Fatalf("unique-id %q: %v", uidl[n-1], err)
			}
			return uint32(v)
		}
		ctx := t.Context()
		if _, err := c.Nodes[2].Expunge(ctx, box, "INBOX", []uint32{uidOf(2)}, false); err != nil {
			t.Fatalf("expunge elsewhere: %v", err)
		}
		if _, err := c.Nodes[0].Copy(ctx, box, "INBOX", "Trash", []uint32{uidOf(3)}, true); err != nil {
			t.Fatalf("move elsewhere: %v", err)
		}
		c.Deliver(2, "Subject: new\r\n\r\nnew\r\n", box)

		if got := cl.ok("STAT"); got != stat {
			t.Errorf("STAT changed in the session: %q, was %q", got, stat)
		}
		if got := cl.multiLines("LIST"); !slices.Equal(got, list) {
			t.Errorf("LIST changed in the session: %q, was %q", got, list)
		}
		if got := cl.multiLines("UIDL"); !slices.Equal(got, uidl) {
			t.Errorf("UIDL changed in the session: %q, was %q", got, uidl)
		}
		if _, body := cl.multi("RETR 4"); !strings.HasSuffix(body, "body 4\r\n") {
			t.Errorf("RETR 4 %q", body)
		}
		cl.fail("RETR 5", "")
		for _, n := range []string{"1", "2", "3"} {
			cl.ok("DELE " + n)
		}
		cl.quit()

		cl = login(t, 0, box)
		got := cl.multiLines("UIDL")
		if len(got) != 2 || strings.Fields(got[0])[1] != strings.Fields(uidl[3])[1] {
			t.Errorf("after QUIT: UIDL %q, want message 4 (%q) and the new one", got, uidl[3])
		}
		if _, body := cl.multi("RETR 2"); !strings.HasSuffix(body, "new\r\n") {
			t.Errorf("new message %q", body)
		}
		cl.quit()
		trash, err := c.Nodes[1].View(ctx, box, "Trash")
		if err != nil || len(trash.Messages) != 1 {
			t.Errorf("Trash after QUIT: %d messages, %v; want the moved one", len(trash.Messages), err)
		}
	})

	t.Run("OtherUsersMaildrop", func(t *testing.T) {
		c.Deliver(0, "Subject: for alice\r\n\r\nsecret\r\n", "alice@example.com")
		c.Deliver(0, "Subject: for bob\r\n\r\nhi\r\n", "bob@example.com")
		cl := pop3Dial(t, servers[2])
		cl.ok("USER alice@example.com")
		cl.fail("PASS bobpw", "AUTH")
		cl.fail("AUTH PLAIN "+pop3Plain("alice@example.com", "bob@example.com", "bobpw"), "AUTH")
		cl.login("bob@example.com", "bobpw")
		if got := cl.ok("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
			t.Errorf("bob STAT %q", got)
		}
		if _, body := cl.multi("RETR 1"); strings.Contains(body, "alice") {
			t.Errorf("bob read %q", body)
		}
		cl.fail("RETR 2", "")
		cl.quit()
	})

	t.Run("RetrMarksSeenAtQuit", func(t *testing.T) {
		ctx := t.Context()
		seen := func(t *testing.T, box string) []bool {
			t.Helper()
			v, err := c.Nodes[0].View(ctx, box, "INBOX")
			if err != nil {
				t.Fatal(err)
			}
			var out []bool
			for _, m := range v.Messages {
				out = append(out, slices.Contains(m.Flags, `\Seen`))
			}
			return out
		}
		for _, box := range []string{"seen@example.com", "unseen@example.com"} {
			for i := range 4 {
				c.Deliver(i%3, fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i), box)
			}
		}
		// A session that ends without QUIT sets nothing.
		cl := login(t, 1, "seen@example.com")
		cl.multi("RETR 1")
		cl.conn.Close()
		pop3Eventually(t, "maildrop unlocked after drop", func() bool {
			cl = pop3Dial(t, servers[1])
			cl.ok("USER seen@example.com")
			if strings.HasPrefix(cl.cmd("PASS pw"), "+OK") {
				return true
			}
			cl.conn.Close()
			return false
		})
		if got := seen(t, "seen@example.com"); slices.Contains(got, true) {
			t.Fatalf("after a dropped session: seen %v", got)
		}
		// RETR 1 and 3 kept, TOP 2, RETR 4 deleted: only 1 and 3 are seen.
		cl.multi("RETR 1")
		cl.multi("TOP 2 0")
		cl.multi("RETR 3")
		cl.multi("RETR 4")
		cl.ok("DELE 4")
		cl.quit()
		if got := seen(t, "seen@example.com"); !slices.Equal(got, []bool{true, false, true}) {
			t.Errorf("after RETR 1, TOP 2, RETR 3 and RETR+DELE 4, QUIT: seen %v, want [true false true]", got)
		}

		cl = pop3Dial(t, keepUnseen)
		cl.login("unseen@example.com", "pw")
		cl.multi("RETR 1")
		cl.quit()
		if got := seen(t, "unseen@example.com"); slices.Contains(got, true) {
			t.Errorf("with KeepUnseen: seen %v", got)
		}
	})
}
