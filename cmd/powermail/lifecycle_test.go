package main

import (
	"bufio"
	"net"
	"net/smtp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A node stopped (SIGTERM) while it bootstraps exits 0 at any point of
// its start, as a stop asked for, and starts again and finishes.
func TestStopWhileBootstrappingIsClean(t *testing.T) {
	var last *proc
	for _, wait := range []time.Duration{300 * time.Millisecond, 700 * time.Millisecond, 1200 * time.Millisecond, 2 * time.Second} {
		p := &proc{id: "solo", cluster: freeAddr(t), admin: freeAddr(t), data: t.TempDir()}
		p.start(t, "--bootstrap", "--replicas", "1")
		time.Sleep(wait)
		if err := p.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM %v after the start: %v\n%s", wait, err, logTail(p.log.String(), 20))
		}
		last = p
	}
	last.start(t, last.extra...)
	last.waitLeader(t, 30*time.Second)
}

// SIGTERM drains the mail clients before the node stops: an IMAP session
// in IDLE gets BYE, and a POP3 session that is logged in may still QUIT
// and commit its deletion; then the node exits 0.
func TestSIGTERMDrainsIMAPAndPOP3(t *testing.T) {
	p := startSoloMail(t, "dana@example.com")
	if err := smtp.SendMail(p.smtp, nil, "x@example.net", []string{"dana@example.com"}, []byte("Subject: t\r\n\r\nhi\r\n")); err != nil {
		t.Fatal(err)
	}

	imapc := dialLines(t, p.imap)
	imapc.expect("* OK")
	imapc.send("a LOGIN dana@example.com pw")
	imapc.expect("a OK")
	imapc.send("b SELECT INBOX")
	imapc.expect("b OK")
	imapc.send("c IDLE")
	imapc.expect("+")

	pop := dialLines(t, p.pop3)
	pop.expect("+OK")
	pop.send("USER dana@example.com")
	pop.expect("+OK")
	pop.send("PASS pw")
	pop.expect("+OK")
	pop.send("DELE 1")
	pop.expect("+OK")

	stopped := make(chan error, 1)
	go func() { stopped <- p.stop(syscall.SIGTERM) }()
	imapc.expect("* BYE [UNAVAILABLE]")
	pop.send("QUIT")
	pop.expect("+OK")
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the node did not stop")
	}
	// The deletion was committed: the restarted node has no message.
	p.start(t, p.extra...)
	waitLog(t, p, `msg="node running"`)
	again := dialLines(t, p.pop3)
	again.expect("+OK")
	again.send("USER dana@example.com")
	again.expect("+OK")
	again.send("PASS pw")
	again.expect("+OK maildrop has 0 messages")
}

// startSoloMail starts a one-node cluster (R=1) with every mail protocol,
// hosting example.com with mailbox (password "pw").
func startSoloMail(t *testing.T, mailbox string) *proc {
	t.Helper()
	p := &proc{id: "solo", cluster: freeAddr(t), admin: freeAddr(t), data: t.TempDir()}
	p.start(t, append(p.smtpArgs(t), "--bootstrap", "--replicas", "1")...)
	p.waitLeader(t, 30*time.Second)
	waitLog(t, p, `msg="node running"`)
	mustCLI(t, "domain", "add", "example.com", "--addr", p.admin)
	mustCLI(t, "mailbox", "add", mailbox, "--password", "pw", "--addr", p.admin)
	return p
}

// lineConn is a raw line-protocol client for IMAP and POP3.
type lineConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialLines(t *testing.T, addr string) *lineConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &lineConn{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *lineConn) send(line string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads lines until one starts with prefix.
func (c *lineConn) expect(prefix string) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("waiting for %q: %v (got %q)", prefix, err, l)
		}
		if strings.HasPrefix(l, prefix) {
			return
		}
	}
}
