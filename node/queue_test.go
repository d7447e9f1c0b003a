package node

import (
	"errors"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

// queueCluster is deliveryCluster with the queue pointed at a sink for
// elsewhere.net and timings short enough for tests.
func queueCluster(t testing.TB, s *sink, tweak func(*QueueConfig)) *testCluster {
	return queueClusterWith(t, s, func(cfg *Config) {
		if tweak != nil {
			tweak(&cfg.Queue)
		}
	})
}

// queueClusterWith is queueCluster whose tweak sees the whole Config.
func queueClusterWith(t testing.TB, s *sink, tweak func(*Config)) *testCluster {
	c := newTestClusterWith(t, 3, func(cfg *Config) {
		cfg.Queue = QueueConfig{Hostname: "mx.example.com", SRSDomain: "example.com", Interval: 50 * time.Millisecond,
			Lease: 2 * time.Second, RetryMin: 100 * time.Millisecond, RetryMax: 300 * time.Millisecond,
			DestOverride: map[string]string{"elsewhere.net": s.addr}, DialTimeout: time.Second}
		tweak(cfg)
	})
	l := c.leader(5 * time.Second)
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	mustApply(t, l, &fsm.MailboxAdd{Mailboxes: []fsm.NewMailbox{{Address: "a@example.com"}, {Address: "b@example.com"}}})
	mustApply(t, l, &fsm.ForwardAdd{Address: "out@example.com", Targets: []string{"x@elsewhere.net"}})
	mustApply(t, l, &fsm.ForwardAdd{Address: "both@example.com", Targets: []string{"b@example.com", "y@elsewhere.net"}})
	waitFor(t, 5*time.Second, "member records", func() bool {
		m, _ := l.State().Members()
		return len(m) == 3
	})
	return c
}

// sendVia resolves rcpts and delivers one message through n, as the SMTP
// frontend does.
func sendVia(t testing.TB, n *Node, from string, body string, rcpts ...string) DeliveryResult {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	var msg = Message{From: from, Received: time.Now()}
	for _, r := range rcpts {
		res, err := n.Resolve(ctx, r)
		if err != nil {
			t.Fatalf("resolve %s: %v", r, err)
		}
		msg.Mailboxes = append(msg.Mailboxes, res.Mailboxes...)
		msg.External = append(msg.External, res.External...)
	}
	res, err := n.Deliver(ctx, msg, strings.NewReader(body))
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	return res
}

func queueEmpty(c *testCluster) bool {
	for _, n := range c.nodes {
		if l, err := n.State().QueueList("", 10); err != nil || len(l) > 0 {
			return false
		}
	}
	return true
}

func inbox(t testing.TB, n *Node, addr string) []fsm.Message {
	t.Helper()
	if err := n.Barrier(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	msgs, err := n.State().Messages(addr, "INBOX", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

const fwdBody = "From: s@far.org\r\nTo: out@example.com\r\nSubject: forward me\r\n\r\nhello\r\n"

func TestQueueForwardsWithSRS(t *testing.T) {
	s := newSink(t)
	c := queueCluster(t, s, nil)
	f := c.follower()
	res := sendVia(t, f, "s@far.org", fwdBody, "both@example.com")
	if res.Queued == "" {
		t.Fatalf("not queued: %+v", res)
	}
	if got := inbox(t, f, "b@example.com"); len(got) != 1 {
		t.Fatalf("local copy: %+v", got)
	}
	waitFor(t, 10*time.Second, "forward delivered", func() bool { return len(s.messages()) == 1 })
	m := s.messages()[0]
	if !strings.HasPrefix(m.from, "SRS0=") || !strings.HasSuffix(m.from, "=far.org=s@example.com") || m.to[0] != "y@elsewhere.net" {
		t.Fatalf("envelope %q -> %v", m.from, m.to)
	}
	if !strings.HasPrefix(m.data, "Received: by mx.example.com ") || !strings.HasSuffix(m.data, fwdBody) {
		t.Fatalf("data %q", m.data)
	}
	waitFor(t, 5*time.Second, "queue empty", func() bool { return queueEmpty(c) })
	// A bounce to the SRS address finds the original sender.
	back, err := f.Resolve(ctxT(t, 5*time.Second), m.from)
	if err != nil || len(back.External) != 1 || back.External[0] != "s@far.org" {
		t.Fatalf("SRS reverse: %+v %v", back, err)
	}
	// A forged or altered SRS address is unknown, not relayed.
	forged := "SRS0=AAAAAAAA" + m.from[13:]
	if _, err := f.Resolve(ctxT(t, 5*time.Second), forged); err == nil {
		t.Fatalf("forged SRS %s accepted", forged)
	}
	time.Sleep(300 * time.Millisecond)
	if len(s.messages()) != 1 {
		t.Fatalf("%d copies", len(s.messages()))
	}
}

func TestQueueRetriesAfter451(t *testing.T) {
	s := newSink(t)
	s.set("451")
	c := queueCluster(t, s, nil)
	sendVia(t, c.follower(), "a@example.com", fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "two refused tries", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.tries >= 2 })
	l := c.leader(time.Second)
	list, _ := l.State().QueueList("", 10)
	if len(list) != 1 || list[0].Attempts < 1 || !strings.Contains(list[0].LastError, "451") {
		t.Fatalf("queue %+v", list)
	}
	if e, r := gaugeValue(t, l, "powermail_queue_entries"), gaugeValue(t, l, "powermail_queue_recipients"); e != 1 || r != 1 {
		t.Fatalf("queue gauges: %v entries, %v recipients; want 1 and 1", e, r)
	}
	s.set("ok")
	waitFor(t, 10*time.Second, "delivered", func() bool { return len(s.messages()) == 1 })
	waitFor(t, 5*time.Second, "queue empty", func() bool { return queueEmpty(c) })
	time.Sleep(300 * time.Millisecond)
	if n := len(s.messages()); n != 1 {
		t.Fatalf("%d copies", n)
	}
	if got := inbox(t, l, "a@example.com"); len(got) != 0 {
		t.Fatalf("a temporary failure bounced: %+v", got)
	}
}

func TestQueue550SendsOneDSN(t *testing.T) {
	s := newSink(t)
	s.set("550")
	c := queueCluster(t, s, nil)
	l := c.leader(time.Second)
	sendVia(t, c.follower(), "a@example.com", fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "DSN", func() bool { return len(inbox(t, l, "a@example.com")) == 1 })
	dsn := onlyDSN(t, c, l)
	wantAll(t, dsn, "multipart/report; report-type=delivery-status", "Final-Recipient: rfc822; x@elsewhere.net",
		"Action: failed", "Status: 5.1.1", "Diagnostic-Code: smtp; 550 5.1.1", "Subject: forward me")
	if s.tries != 1 {
		t.Errorf("%d tries after a 550", s.tries)
	}
}

// A bounce reaches a local sender whose mailbox is over its quota: it is
// small, and refused it would keep its queue entry (and the message) for
// ever.
func TestQueueBouncesToAFullMailbox(t *testing.T) {
	s := newSink(t)
	s.set("550")
	c := queueCluster(t, s, nil)
	l := c.leader(time.Second)
	sendVia(t, l, "x@far.org", "Subject: fill\r\n\r\nup\r\n", "a@example.com")
	quota := int64(1)
	mustApply(t, l, &fsm.MailboxUpdate{Address: "a@example.com", QuotaBytes: &quota})
	if _, err := l.Resolve(ctxT(t, 5*time.Second), "a@example.com"); !errors.Is(err, ErrOverQuota) {
		t.Fatalf("resolve a full mailbox: %v", err)
	}
	sendVia(t, c.follower(), "a@example.com", fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "DSN", func() bool { return len(inbox(t, l, "a@example.com")) == 2 })
	waitFor(t, 5*time.Second, "queue empty", func() bool { return queueEmpty(c) })
}

// A null sender's message is never bounced.
func TestQueueNeverBouncesABounce(t *testing.T) {
	s := newSink(t)
	s.set("550")
	c := queueCluster(t, s, nil)
	sendVia(t, c.follower(), "", fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "queue empty", func() bool { return queueEmpty(c) })
	for _, mb := range []string{"a@example.com", "b@example.com"} {
		if got := inbox(t, c.leader(time.Second), mb); len(got) != 0 {
			t.Fatalf("bounce of a bounce in %s", mb)
		}
	}
}

// Killing the node working the queue in the middle of a transaction
// (the remote has the data but has not answered) loses nothing: the
// next leader takes the entry once the lease lapses, and the message
// arrives once.
func TestQueueFailoverDeliversOnce(t *testing.T) {
	s := newSink(t)
	s.set("hold")
	c := queueCluster(t, s, nil)
	l := c.leader(time.Second)
	sendVia(t, l, "a@example.com", fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "transaction in progress", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.tries == 1 })
	s.set("ok")
	l.Kill()
	delete(c.nodes, l.ID())
	close(s.release) // the held session ends without an answer
	waitFor(t, 15*time.Second, "delivered after failover", func() bool { return len(s.messages()) >= 1 })
	waitFor(t, 5*time.Second, "queue empty", func() bool { return queueEmpty(c) })
	time.Sleep(300 * time.Millisecond)
	if n := len(s.messages()); n != 1 {
		t.Fatalf("%d copies", n)
	}
}

// The remote stored the message but the acknowledgement was lost: the
// retry may duplicate, never lose.
func TestQueueLostAckAtMostDuplicates(t *testing.T) {
	s := newSink(t)
	s.set("drop")
	c := queueCluster(t, s, nil)
	sendVia(t, c.follower(), "a@example.com", fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "first copy", func() bool { return len(s.messages()) == 1 })
	s.set("ok")
	waitFor(t, 10*time.Second, "queue empty", func() bool { return queueEmpty(c) })
	if n := len(s.messages()); n < 1 || n > 2 {
		t.Fatalf("%d copies", n)
	}
}

// An expired message bounces with the last error.
func TestQueueLifetimeExpiry(t *testing.T) {
	s := newSink(t)
	s.set("451")
	c := queueCluster(t, s, func(q *QueueConfig) { q.Lifetime = 500 * time.Millisecond })
	l := c.leader(time.Second)
	sendVia(t, l, "a@example.com", fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "DSN", func() bool { return len(inbox(t, l, "a@example.com")) == 1 })
	waitFor(t, 5*time.Second, "queue empty", func() bool { return queueEmpty(c) })
	// Our own words are no SMTP reply (RFC 3464 §2.3.6).
	wantAll(t, onlyDSN(t, c, l), "Diagnostic-Code: X-PowerMail; 4.4.7 delivery time expired", "Status: 5.4.7")
}

// A delayed-delivery DSN is sent once, and delivery goes on.
func TestQueueDelayNotice(t *testing.T) {
	s := newSink(t)
	s.set("451")
	c := queueCluster(t, s, func(q *QueueConfig) { q.DelayNotify = 200 * time.Millisecond })
	l := c.leader(time.Second)
	sendVia(t, l, "a@example.com", fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "delay DSN", func() bool { return len(inbox(t, l, "a@example.com")) == 1 })
	time.Sleep(time.Second)
	if n := len(inbox(t, l, "a@example.com")); n != 1 {
		t.Fatalf("%d delay notices", n)
	}
	s.set("ok")
	waitFor(t, 10*time.Second, "delivered", func() bool { return len(s.messages()) == 1 })
}

// A message that passed this cluster too often is a loop: refused.
func TestQueueStopsForwardLoop(t *testing.T) {
	s := newSink(t)
	c := queueCluster(t, s, nil)
	l := c.leader(time.Second)
	var loop strings.Builder
	for range 8 {
		loop.WriteString("Received: from x by mx.example.com with ESMTP id 1;\r\n\tMon, 1 Jan 2024 00:00:00 +0000\r\n")
	}
	sendVia(t, l, "a@example.com", loop.String()+fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "loop DSN", func() bool { return len(inbox(t, l, "a@example.com")) == 1 })
	if len(s.messages()) != 0 {
		t.Fatal("a looping message went out")
	}
}

// The queue gauges share one scan per TTL, however often they are read.
func TestQueueStatsScannedOncePerTTL(t *testing.T) {
	scans := 0
	c := &statsCache{ttl: 5 * time.Second, load: func() (fsm.QueueStats, error) {
		scans++
		return fsm.QueueStats{Entries: scans}, nil
	}}
	t0 := time.Unix(1000, 0)
	for _, at := range []time.Duration{0, time.Second, 4 * time.Second} { // one scrape's three gauges, and more
		if st, _ := c.get(t0.Add(at)); st.Entries != 1 {
			t.Fatalf("at %v: %d scans", at, st.Entries)
		}
	}
	if st, _ := c.get(t0.Add(5 * time.Second)); st.Entries != 2 {
		t.Fatalf("after the TTL: %d scans, want 2", st.Entries)
	}
}

// gaugeValue reads one unlabelled gauge from n's metrics registry.
func gaugeValue(t *testing.T, n *Node, name string) float64 {
	t.Helper()
	families, err := n.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// TestQueueDefaultsWaitForTheFinalDot: with the default lease, an attempt
// that spent the longest setup (two dials and greetings, for STARTTLS)
// still has the ten minutes RFC 5321 §4.5.3.2.6 gives the final dot's
// reply, and ends before its lease does.
func TestQueueDefaultsWaitForTheFinalDot(t *testing.T) {
	var q QueueConfig
	q.setDefaults()
	setup := 2 * (q.DialTimeout + q.GreetingTimeout)
	if left := q.AttemptTimeout - setup; left < 10*time.Minute {
		t.Errorf("attempt %v - setup %v leaves %v for the final dot, want 10m", q.AttemptTimeout, setup, left)
	}
	if q.AttemptTimeout >= q.Lease {
		t.Errorf("attempt %v outlives the lease %v", q.AttemptTimeout, q.Lease)
	}
}
