package node

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestQueueLogsEachRecipientOutcome: every attempt on an outbound
// recipient leaves a line in the log of the node that made it, with the
// entry, the recipient, the outcome and the server's reply, as a mail
// administrator greps for a message that went elsewhere. A bounce left
// no line at all: only a counter in /metrics moved. A bounce is logged
// at WARN, where an administrator watching for failures looks; a
// delivery at INFO.
func TestQueueLogsEachRecipientOutcome(t *testing.T) {
	s := newSink(t)
	s.set("550")
	var buf syncBuffer
	c := queueClusterWith(t, s, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	})
	l := c.leader(time.Second)
	sendVia(t, c.follower(), "a@example.com", fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "DSN", func() bool { return len(inbox(t, l, "a@example.com")) == 1 })
	line := func(outcome string) string {
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.Contains(l, `msg="queue: recipient"`) && strings.Contains(l, "outcome="+outcome) {
				return l
			}
		}
		return ""
	}
	perm := line("perm")
	if !strings.Contains(perm, "rcpt=x@elsewhere.net") || !strings.Contains(perm, "550") || !strings.Contains(perm, "id=") {
		t.Fatalf("no line for the bounced recipient (want rcpt, outcome perm, the 550 and the entry ID):\n%s", buf.String())
	}
	if !strings.Contains(perm, "level=WARN") {
		t.Errorf("a bounced recipient is not logged at WARN:\n%s", perm)
	}
	s.set("ok")
	sendVia(t, c.follower(), "a@example.com", fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "delivered", func() bool { return len(s.messages()) == 1 })
	waitFor(t, 5*time.Second, "the sent line", func() bool { return strings.Contains(line("sent"), "rcpt=x@elsewhere.net") })
	if sent := line("sent"); !strings.Contains(sent, "level=INFO") {
		t.Errorf("a delivered recipient is not logged at INFO:\n%s", sent)
	}
}

// TestQueueLogsAnExpiredRecipient: a recipient whose delivery time runs
// out bounces as surely as one a server refused, and is logged as one
// (WARN, outcome perm, the 4.4.7 reason); the deferrals before it are
// routine, at INFO. Expiry recorded the bounce without a line, so the
// log showed only the deferrals of a message that never arrived.
func TestQueueLogsAnExpiredRecipient(t *testing.T) {
	s := newSink(t)
	s.set("451")
	var buf syncBuffer
	c := queueClusterWith(t, s, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
		cfg.Queue.Lifetime = 500 * time.Millisecond
	})
	l := c.leader(time.Second)
	sendVia(t, l, "a@example.com", fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "DSN", func() bool { return len(inbox(t, l, "a@example.com")) == 1 })
	var temp, perm string
	for _, line := range strings.Split(buf.String(), "\n") {
		if !strings.Contains(line, `msg="queue: recipient"`) || !strings.Contains(line, "rcpt=x@elsewhere.net") {
			continue
		}
		switch {
		case strings.Contains(line, "outcome=temp") && temp == "":
			temp = line
		case strings.Contains(line, "outcome=perm"):
			perm = line
		}
	}
	if !strings.Contains(temp, "level=INFO") || !strings.Contains(temp, "451") {
		t.Errorf("the deferral is not logged at INFO with its reply: %q\n%s", temp, buf.String())
	}
	if !strings.Contains(perm, "level=WARN") || !strings.Contains(perm, "4.4.7") {
		t.Errorf("the expired recipient is not logged at WARN with 4.4.7: %q\n%s", perm, buf.String())
	}
}
