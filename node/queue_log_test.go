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
// no line at all: only a counter in /metrics moved.
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
	s.set("ok")
	sendVia(t, c.follower(), "a@example.com", fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "delivered", func() bool { return len(s.messages()) == 1 })
	waitFor(t, 5*time.Second, "the sent line", func() bool { return strings.Contains(line("sent"), "rcpt=x@elsewhere.net") })
}
