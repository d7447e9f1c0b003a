package node

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"powermail/fsm"
)

// scriptedMX is a raw SMTP server on loopback whose reply to each
// command is chosen by the test; it keeps the messages whose final dot
// it answered with a 2xx reply.
type scriptedMX struct {
	addr  string
	reply func(cmd string) string // "" for the default reply, "CLOSE" to hang up
	mu    sync.Mutex
	got   []string // message data, per transaction that reached the dot
	mails []string // the MAIL command of each of them
}

func startScriptedMX(t testing.TB, reply func(cmd string) string) *scriptedMX {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	m := &scriptedMX{addr: ln.Addr().String(), reply: reply}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go m.serve(c)
		}
	}()
	return m
}

func (m *scriptedMX) serve(c net.Conn) {
	defer c.Close()
	io.WriteString(c, "220 scripted.test ESMTP\r\n")
	br := bufio.NewReader(c)
	var scripted string // the test's reply to the command at hand, asked once
	answer := func(_, def string) {
		r := def
		if scripted != "" {
			r = scripted
		}
		io.WriteString(c, r)
	}
	mail := ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(line, "\r\n")
		scripted = ""
		if m.reply != nil {
			scripted = m.reply(cmd)
		}
		if scripted == "CLOSE" {
			return // the connection lost before this command's reply
		}
		verb := strings.ToUpper(strings.SplitN(cmd, " ", 2)[0])
		switch verb {
		case "MAIL":
			mail = cmd
			answer(cmd, "250 2.0.0 ok\r\n")
		case "EHLO":
			answer(cmd, "250-scripted.test\r\n250 8BITMIME\r\n")
		case "DATA":
			answer(cmd, "354 go ahead\r\n")
			var data strings.Builder
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(l)
			}
			r := "250 2.0.0 queued\r\n"
			if m.reply != nil {
				if got := m.reply("."); got != "" {
					r = got
				}
			}
			if r[0] == '2' {
				m.mu.Lock()
				m.got = append(m.got, data.String())
				m.mails = append(m.mails, mail)
				m.mu.Unlock()
			}
			io.WriteString(c, r)
		case "QUIT":
			answer(cmd, "221 bye\r\n")
			return
		default:
			answer(cmd, "250 2.0.0 ok\r\n")
		}
	}
}

func (m *scriptedMX) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.got)
}

// A server's positive completion reply other than 250 (RFC 5321 §4.2.1:
// a client interprets the first digit; a 2yz is success) to MAIL and to
// the final dot is success: the message is sent once, and neither
// retried (a copy each time) nor bounced when its lifetime ends.
func TestQueueAnyTwoHundredReplyIsSuccess(t *testing.T) {
	mx := startScriptedMX(t, func(cmd string) string {
		switch {
		case strings.HasPrefix(strings.ToUpper(cmd), "MAIL"):
			return "252 2.1.0 sender ok, not verified\r\n"
		case cmd == ".":
			return "251-2.6.0 accepted, and it will be forwarded\r\n251 2.6.0 to a server of its own\r\n"
		}
		return ""
	})
	c := queueCluster(t, &sink{addr: mx.addr}, nil)
	l := c.leader(time.Second)
	sendVia(t, c.follower(), "a@example.com", fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "queue empty", func() bool { return queueEmpty(c) })
	time.Sleep(500 * time.Millisecond)
	if n := mx.count(); n != 1 {
		t.Errorf("the server got %d copies, want 1", n)
	}
	if got := inbox(t, l, "a@example.com"); len(got) != 0 {
		t.Errorf("a message the server took was bounced: %d notices", len(got))
	}
}

// A multi-line reply (as large providers word "no such user") is
// recorded, and reported to the sender, as its text with the lines
// joined by spaces: the line breaks became '?' in the notice, gluing
// words and the help URL together.
func TestQueueMultiLineReplyReadsAsText(t *testing.T) {
	mx := startScriptedMX(t, func(cmd string) string {
		if strings.HasPrefix(strings.ToUpper(cmd), "RCPT") {
			return "550-5.1.1 The account that you tried to reach does not exist. Please try\r\n" +
				"550-5.1.1 double-checking the address for typos. Learn more at\r\n" +
				"550 5.1.1 https://help.example/nosuchuser\r\n"
		}
		return ""
	})
	c := queueCluster(t, &sink{addr: mx.addr}, nil)
	l := c.leader(time.Second)
	sendVia(t, c.follower(), "a@example.com", fwdBody, "out@example.com")
	dsn := onlyDSN(t, c, l)
	want := "550 5.1.1 The account that you tried to reach does not exist. Please try double-checking the address for typos. Learn more at https://help.example/nosuchuser"
	wantAll(t, dsn, "Diagnostic-Code: smtp; "+want, "Status: 5.1.1")
	if strings.Contains(dsn, "try?double") || strings.Contains(dsn, "at?https") {
		t.Errorf("line breaks garbled in the notice:\n%s", dsn)
	}
}

func (m *scriptedMX) sent() (mails, data []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.mails...), append([]string(nil), m.got...)
}

// A bounce of forwarded mail goes to a sender elsewhere with the null
// reverse-path (RFC 5321 §4.5.5), and when that bounce is refused in turn
// nothing more is sent: no bounce of a bounce.
func TestQueueBounceToAnExternalSenderIsNullAndEndsThere(t *testing.T) {
	var mu sync.Mutex
	var lastMail string
	var toSender []string // the MAIL of each transaction that named s@far.org
	mx := startScriptedMX(t, func(cmd string) string {
		mu.Lock()
		defer mu.Unlock()
		switch up := strings.ToUpper(cmd); {
		case strings.HasPrefix(up, "MAIL"):
			lastMail = cmd
		case strings.HasPrefix(up, "RCPT TO:<X@ELSEWHERE.NET>"):
			return "550 5.1.1 no such user\r\n"
		case strings.HasPrefix(up, "RCPT TO:<S@FAR.ORG>"):
			toSender = append(toSender, lastMail)
			return "550 5.1.1 no such sender either\r\n"
		}
		return ""
	})
	c := queueCluster(t, &sink{addr: mx.addr}, func(q *QueueConfig) {
		q.DestOverride["far.org"] = mx.addr
	})
	sendVia(t, c.follower(), "s@far.org", fwdBody, "out@example.com")
	waitFor(t, 10*time.Second, "queue empty", func() bool { return queueEmpty(c) })
	time.Sleep(500 * time.Millisecond)
	if mails, _ := mx.sent(); len(mails) != 0 {
		t.Fatalf("refused mail was taken: %q", mails)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(toSender) != 1 || !strings.HasPrefix(toSender[0], "MAIL FROM:<>") {
		t.Errorf("transactions to the sender: %q, want one bounce from <>", toSender)
	}
	l := c.leader(time.Second)
	for _, mb := range []string{"a@example.com", "b@example.com"} {
		if got := inbox(t, l, mb); len(got) != 0 {
			t.Errorf("%s got %d messages", mb, len(got))
		}
	}
}

// A connection lost at DATA, after RCPT refused one recipient and took
// another, records the one taken as a temporary failure of its own: it
// was left with no outcome for the attempt, so its error read as the
// other recipient's refusal.
func TestQueueConnectionLostAtDataRecordsTheAcceptedRecipients(t *testing.T) {
	mx := startScriptedMX(t, func(cmd string) string {
		switch {
		case strings.HasPrefix(cmd, "RCPT TO:<x@"):
			return "550 5.1.1 no such user\r\n"
		case cmd == "DATA":
			return "CLOSE"
		}
		return ""
	})
	c := queueCluster(t, &sink{addr: mx.addr}, func(q *QueueConfig) { q.RetryMin, q.RetryMax = time.Hour, time.Hour })
	l := c.leader(time.Second)
	mustApply(t, l, &fsm.ForwardAdd{Address: "pair@example.com", Targets: []string{"x@elsewhere.net", "y@elsewhere.net"}})
	sendVia(t, l, "a@example.com", fwdBody, "pair@example.com")
	var y fsm.QueueRecipient
	waitFor(t, 10*time.Second, "the attempt recorded", func() bool {
		es, err := l.State().QueueList("", 10)
		if err != nil || len(es) != 1 || es[0].Attempts == 0 {
			return false
		}
		for _, r := range es[0].Recipients {
			if r.Address == "y@elsewhere.net" {
				y = r
			}
		}
		return true
	})
	if y.State != fsm.RcptPending || !strings.HasPrefix(y.Error, "4.4.2 ") {
		t.Fatalf("y after a connection lost at DATA: %+v", y)
	}
}
