package node

import (
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

// New SRS addresses carry eight hash characters. The four an earlier
// release minted are taken only within srsMaxAge days of the node's
// first start with long hashes, which the data directory keeps across
// restarts.
func TestSRSHashLength(t *testing.T) {
	c := newTestCluster(t, 1)
	n := c.leader(5 * time.Second)
	mustApply(t, n, &fsm.DomainAdd{Name: "example.com"})
	addr := n.srsForward("s@far.org", "example.com", false, time.Now())
	hash := strings.SplitN(addr, "=", 3)[1]
	if len(hash) != srsHashLen {
		t.Fatalf("minted %s: a hash of %d characters, want %d", addr, len(hash), srsHashLen)
	}
	short := "SRS0=" + hash[:srsShortHashLen] + addr[len("SRS0=")+srsHashLen:]
	if _, ok, err := n.srsReverse(short); !ok || err != nil {
		t.Fatalf("a short hash within the window: %v", err)
	}
	n.srsShortUntil = time.Now().Add(-time.Second)
	if _, _, err := n.srsReverse(short); err == nil {
		t.Fatal("a short hash after the window was taken")
	}
	if orig, _, err := n.srsReverse(addr); err != nil || orig != "s@far.org" {
		t.Fatalf("the long hash: %q %v", orig, err)
	}
	dir := t.TempDir()
	first, err := srsShortUntil(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	again, err := srsShortUntil(dir, time.Now().Add(48*time.Hour)) // a restart later
	if err != nil || !again.Equal(first) {
		t.Fatalf("the window moved at a restart: %v then %v (%v)", first, again, err)
	}
}

// Mail we forwarded can come back to us through a provider that forwards
// without rewriting the sender, so that its envelope sender is one of our
// own SRS addresses. Forwarded out again, it leaves with that address
// wrapped once more. Both our own failure notice about it and a remote
// server's bounce to the doubly wrapped address must reach the original
// sender, which means decoding our SRS as often as it was applied: the
// address itself is no mailbox, so the notice was dropped and the bounce
// refused.
func TestQueueBounceOfOurOwnSRSSenderReachesTheOriginal(t *testing.T) {
	s := newSink(t)
	s.set("550")
	c := queueCluster(t, s, nil)
	l := c.leader(time.Second)
	came := l.srsForward("a@example.com", "example.com", false, time.Now()) // what we sent it out as
	sendVia(t, c.follower(), came, fwdBody, "out@example.com")
	dsn := onlyDSN(t, c, l)
	wantAll(t, dsn, "Final-Recipient: rfc822; x@elsewhere.net", "Action: failed", "Status: 5.1.1")

	twice := l.srsForward(came, "example.com", false, time.Now()) // what the forward sent it out as
	res, err := c.follower().Resolve(ctxT(t, 5*time.Second), twice)
	if err != nil || len(res.Mailboxes) != 1 || res.Mailboxes[0] != "a@example.com" {
		t.Fatalf("a bounce to %s resolves to %+v, %v; want a@example.com", twice, res, err)
	}
}

// The nodes of a cluster mint and check SRS stamps by their own clocks.
// Just after midnight UTC by a node whose clock is ahead, it mints the
// next day's stamp; a bounce to that address, checked a moment later by
// a node whose clock is still before midnight, must be taken, not read
// as 1023 days old (the stamp counts days modulo 1024).
func TestSRSTakesTheNextDaysStamp(t *testing.T) {
	c := newTestCluster(t, 1)
	n := c.leader(5 * time.Second)
	mustApply(t, n, &fsm.DomainAdd{Name: "example.com"})
	ahead := n.srsForward("s@far.org", "example.com", false, time.Now().Add(24*time.Hour))
	if orig, _, err := n.srsReverse(ahead); err != nil || orig != "s@far.org" {
		t.Fatalf("the next day's stamp: %q %v", orig, err)
	}
	far := n.srsForward("s@far.org", "example.com", false, time.Now().Add(48*time.Hour))
	if _, _, err := n.srsReverse(far); err == nil {
		t.Fatal("a stamp two days ahead was taken")
	}
}

// go-smtp hands a quoted local part over unquoted ("john doe"@far.org
// arrives as john doe@far.org), so an address written back into MAIL or
// RCPT must be quoted again where it is no dot-string (RFC 5321 §4.1.2),
// the SRS address made of it included; unquoted, the space ends the path
// and the next hop refuses the command.
func TestQueueQuotesALocalPartThatNeedsIt(t *testing.T) {
	s := newSink(t)
	c := queueCluster(t, s, nil)
	l := c.leader(time.Second)
	sendVia(t, l, "john doe@far.org", fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "forward delivered", func() bool { return len(s.messages()) == 1 })
	m := s.messages()[0]
	if !strings.HasPrefix(m.from, "SRS0=") || !strings.HasSuffix(m.from, "=far.org=john doe@example.com") {
		t.Fatalf("sent as %q", m.from)
	}
	for addr, want := range map[string]string{
		"a.b+c=d@x.org":     "a.b+c=d@x.org",
		"john doe@x.org":    `"john doe"@x.org`,
		`a"b\c@x.org`:       `"a\"b\\c"@x.org`,
		".a@x.org":          `".a"@x.org`,
		"a..b@x.org":        `"a..b"@x.org`,
		"jö@x.org":          "jö@x.org",
		"":                  "",
		"SRS0=h=TT=d=l@x.o": "SRS0=h=TT=d=l@x.o",
	} {
		if got := SMTPPath(addr); got != want {
			t.Errorf("SMTPPath(%q) = %q, want %q", addr, got, want)
		}
	}
}
