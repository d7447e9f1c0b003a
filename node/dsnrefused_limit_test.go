package node

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"powermail/fsm"
)

// lockedLog is a log sink the nodes of a test cluster share.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// A failure notice about a mailbox refused at commit that cannot be
// committed within RefusedNoticeTimeout is given up: the delivery still
// succeeds (the message is stored for the other mailbox, so SMTP's one
// reply is 250; a 4xx would have the client send it again, a duplicate),
// no notice reaches the sender, and the log names the sender and the
// RCPT it was about. A limit of a nanosecond expires before any commit.
func TestRefusedNoticeGivenUpAtItsLimit(t *testing.T) {
	logs := &lockedLog{}
	c := newTestClusterWith(t, 3, func(cfg *Config) {
		cfg.RefusedNoticeTimeout = time.Nanosecond
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	l := c.leader(5 * time.Second)
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	mustApply(t, l, &fsm.MailboxAdd{Mailboxes: []fsm.NewMailbox{{Address: "carol@example.com"}, {Address: "bob@example.com"}, {Address: "frank@example.com"}}})
	n := c.follower()
	msg := Message{From: "carol@example.com", Mailboxes: []string{"bob@example.com", "frank@example.com"}, Received: time.Now(),
		Notify: &DSNRequest{Failure: []NotifyRcpt{
			{Address: "bob@example.com", Mailboxes: []string{"bob@example.com"}},
			{Address: "frank@example.com", Mailboxes: []string{"frank@example.com"}},
		}}}
	mustApply(t, l, &fsm.MailboxRemove{Address: "frank@example.com"}) // after RCPT took it
	if err := n.Barrier(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	res, err := n.Deliver(ctxT(t, 10*time.Second), msg, strings.NewReader("Subject: to frank\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatalf("the delivery failed with its notice: %v", err)
	}
	if !errors.Is(res.Rejected["frank@example.com"], ErrUnknownRecipient) || len(res.Rejected) != 1 {
		t.Fatalf("rejected %v, want frank's mailbox only", res.Rejected)
	}
	if got := inbox(t, n, "bob@example.com"); len(got) != 1 {
		t.Fatalf("bob holds %d messages, want the one delivered", len(got))
	}
	waitFor(t, 5*time.Second, "the dropped notice logged", func() bool {
		s := logs.String()
		return strings.Contains(s, "failure notice for mailboxes refused at commit not sent") &&
			strings.Contains(s, "carol@example.com") && strings.Contains(s, "frank@example.com")
	})
	if got := inbox(t, n, "carol@example.com"); len(got) != 0 {
		t.Fatalf("the sender holds %d messages; the notice was given up", len(got))
	}
}

// The notice's limit defaults to DefaultRefusedNoticeTimeout, and a
// negative one or one past MaxRefusedNoticeTimeout (the client would
// give up on its reply first) is refused.
func TestRefusedNoticeTimeoutRange(t *testing.T) {
	for give, want := range map[time.Duration]time.Duration{0: DefaultRefusedNoticeTimeout, time.Minute: time.Minute,
		-time.Second: -1, MaxRefusedNoticeTimeout + time.Second: -1} {
		cfg := Config{ID: "n1", DataDir: t.TempDir(), ClusterAddr: "127.0.0.1:0", Secret: testSecret, RefusedNoticeTimeout: give}
		err := cfg.setDefaults()
		if want < 0 {
			if !errors.Is(err, ErrConfig) {
				t.Errorf("limit %v: %v, want ErrConfig", give, err)
			}
			continue
		}
		if err != nil || cfg.RefusedNoticeTimeout != want {
			t.Errorf("limit %v: %v, %v; want %v", give, cfg.RefusedNoticeTimeout, err, want)
		}
	}
}
