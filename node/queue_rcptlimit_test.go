package node

import (
	"bufio"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"powermail/fsm"
)

// rcptLimitSink is an MX that takes at most limit recipients per
// transaction and answers the next ones as RFC 821 had it, "552 too many
// recipients" (RFC 5321 §4.5.3.1.10 made it 452).
type rcptLimitSink struct {
	addr  string
	limit int
	reply *smtp.SMTPError // past the limit (nil: 552 5.5.3)
	mu    sync.Mutex
	got   []string // recipients of every message taken
}

func startRcptLimitSink(t testing.TB, limit int) *rcptLimitSink {
	s := &rcptLimitSink{limit: limit}
	srv := smtp.NewServer(s)
	srv.Domain = "limit.test"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *rcptLimitSink) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &rcptLimitSession{s: s}, nil
}

func (s *rcptLimitSink) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

type rcptLimitSession struct {
	s  *rcptLimitSink
	to []string
}

func (ss *rcptLimitSession) Reset()                               { ss.to = nil }
func (ss *rcptLimitSession) Logout() error                        { return nil }
func (ss *rcptLimitSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *rcptLimitSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if len(ss.to) >= ss.s.limit && ss.s.reply != nil {
		return ss.s.reply
	}
	if len(ss.to) >= ss.s.limit {
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 5, 3}, Message: "too many recipients"}
	}
	ss.to = append(ss.to, to)
	return nil
}
func (ss *rcptLimitSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	ss.s.mu.Lock()
	ss.s.got = append(ss.s.got, ss.to...)
	ss.s.mu.Unlock()
	return nil
}

// RFC 5321 §4.5.3.1.10: a server out of room for recipients answers
// 452, but RFC 821 said 552 and servers still do; a client SHOULD take a
// 552 to RCPT as temporary. Recipients past such a server's limit are
// sent in a later transaction, never bounced.
func TestQueueRcpt552IsTooManyRecipientsNotAFailure(t *testing.T) {
	s := newSink(t)
	lim := startRcptLimitSink(t, 2)
	c := queueCluster(t, s, func(q *QueueConfig) { q.DestOverride["many.test"] = lim.addr })
	l := c.leader(time.Second)
	targets := []string{"p@many.test", "q@many.test", "r@many.test", "s@many.test", "t@many.test"}
	mustApply(t, l, &fsm.ForwardAdd{Address: "list@example.com", Targets: targets})
	sendVia(t, c.follower(), "a@example.com", fwdBody, "list@example.com")
	waitFor(t, 15*time.Second, "queue empty", func() bool { return queueEmpty(c) })
	time.Sleep(500 * time.Millisecond) // any DSN in flight
	got := lim.received()
	slices.Sort(got)
	if !slices.Equal(got, targets) {
		t.Errorf("the MX took %v, want each of %v once", got, targets)
	}
	if msgs := inbox(t, l, "a@example.com"); len(msgs) != 0 {
		t.Errorf("the sender got %d notices for recipients the MX only deferred:\n%s", len(msgs), bodyText(t, l, msgs[0].Hash))
	}
}

// RFC 5321 §4.5.3.1.10: the recipients a server deferred for its
// recipient limit go in a new transaction at once, not after the retry
// backoff (an hour here), so a large forward to one domain drains in one
// attempt.
func TestQueueRecipientsPastTheLimitGoAtOnce(t *testing.T) {
	lim := startRcptLimitSink(t, 2)
	sendPastTheLimit(t, lim)
}

// sendPastTheLimit forwards one message to five recipients at lim's
// domain, with an hour's retry backoff, and requires lim to take each
// once before the queue empties.
func sendPastTheLimit(t *testing.T, lim *rcptLimitSink) {
	s := newSink(t)
	c := queueCluster(t, s, func(q *QueueConfig) {
		q.DestOverride["many.test"] = lim.addr
		q.RetryMin, q.RetryMax = time.Hour, 2*time.Hour
	})
	l := c.leader(time.Second)
	targets := []string{"p@many.test", "q@many.test", "r@many.test", "s@many.test", "t@many.test"}
	mustApply(t, l, &fsm.ForwardAdd{Address: "list@example.com", Targets: targets})
	sendVia(t, c.follower(), "a@example.com", fwdBody, "list@example.com")
	waitFor(t, 15*time.Second, "queue empty", func() bool { return queueEmpty(c) })
	got := lim.received()
	slices.Sort(got)
	if !slices.Equal(got, targets) {
		t.Errorf("the MX took %v, want each of %v once", got, targets)
	}
}

// A server that offers no enhanced status codes answers its recipient
// limit with a bare "452 too many recipients", which go-smtp reads with
// a zero enhanced code, not smtp.NoEnhancedCode: those recipients too
// go in a new transaction at once.
func TestQueueRecipientsPastALimitWithoutEnhancedCodeGoAtOnce(t *testing.T) {
	lim := startRcptLimitSink(t, 2)
	lim.reply = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.NoEnhancedCode, Message: "too many recipients"}
	sendPastTheLimit(t, lim)
}

// startDropAtDataMX is a raw MX that takes limit recipients a
// transaction, answers the next "452 4.5.3 too many recipients", and
// drops the connection at DATA: nothing was taken. It offers SMTPUTF8,
// so that no recipient has an outcome before DATA.
func startDropAtDataMX(t testing.TB, limit int) string {
	return serveDropAtData(t, "127.0.0.1:0", limit, true)
}

// serveDropAtData serves such an MX on addr, offering SMTPUTF8 or not,
// and returns its address.
func serveDropAtData(t testing.TB, addr string, limit int, utf8 bool) string {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ehlo := "250-drop.test\r\n250 ENHANCEDSTATUSCODES\r\n"
	if utf8 {
		ehlo = "250-drop.test\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n"
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go dropAtData(conn, ehlo, limit)
		}
	}()
	return ln.Addr().String()
}

func dropAtData(conn net.Conn, ehlo string, limit int) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	io.WriteString(conn, "220 drop.test ESMTP\r\n")
	rcpts := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
		case strings.HasPrefix(cmd, "EHLO"):
			io.WriteString(conn, ehlo)
		case strings.HasPrefix(cmd, "RCPT"):
			if rcpts >= limit {
				io.WriteString(conn, "452 4.5.3 too many recipients\r\n")
				continue
			}
			rcpts++
			io.WriteString(conn, "250 2.1.5 ok\r\n")
		case cmd == "DATA":
			return
		case cmd == "QUIT":
			io.WriteString(conn, "221 2.0.0 bye\r\n")
			return
		default:
			rcpts = 0
			io.WriteString(conn, "250 2.0.0 ok\r\n")
		}
	}
}

// A connection lost at DATA after some recipients went past the
// server's limit leaves every recipient with an outcome: the ones the
// server had accepted at RCPT, which it never took, as well as the ones
// past the limit. None is left out of the attempt's record.
func TestQueueConnectionLostAtDataPastTheLimitRecordsEveryRecipient(t *testing.T) {
	s := newSink(t)
	addr := startDropAtDataMX(t, 2)
	c := queueCluster(t, s, func(q *QueueConfig) {
		q.DestOverride["many.test"] = addr
		q.RetryMin, q.RetryMax = time.Hour, 2*time.Hour
	})
	l := c.leader(time.Second)
	targets := []string{"p@many.test", "q@many.test", "r@many.test"}
	mustApply(t, l, &fsm.ForwardAdd{Address: "list@example.com", Targets: targets})
	sendVia(t, c.follower(), "a@example.com", fwdBody, "list@example.com")
	var e fsm.QueueEntry
	waitFor(t, 15*time.Second, "an attempt recorded", func() bool {
		l, err := c.leader(time.Second).State().QueueList("", 10)
		if err != nil || len(l) != 1 || l[0].Attempts == 0 {
			return false
		}
		e = l[0]
		return true
	})
	for _, r := range e.Recipients {
		if r.State != fsm.RcptPending || r.Error == "" {
			t.Errorf("recipient %s: state %v, error %q; want pending with the attempt's error", r.Address, r.State, r.Error)
		}
	}
}
