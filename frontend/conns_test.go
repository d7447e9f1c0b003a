package frontend

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingListener counts the server's writes to its connections.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, writes: l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A multi-line reply, and the replies to a pipelined group of commands,
// leave in one write each (RFC 2920 §3.1), and the last reply before the
// server closes is still sent.
func TestRepliesLeaveTogether(t *testing.T) {
	srv, err := NewSMTPServer(testConfig(), newFakeDeliverer())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var writes atomic.Int64
	go srv.Serve(countingListener{Listener: ln, writes: &writes})
	defer srv.Close()
	c := dial(t, ln.Addr().String())
	step := func(what string, want int64) {
		t.Helper()
		if got := writes.Swap(0); got != want {
			t.Errorf("%s: %d writes, want %d", what, got, want)
		}
	}
	step("greeting", 1)
	if r := c.ehlo(); !strings.Contains(r.msg, "PIPELINING") {
		t.Fatalf("EHLO: %v", r)
	}
	step("EHLO", 1)
	c.write("MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<nobody@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
	for _, want := range []int{250, 250, 550, 250, 354} {
		if r := c.read(); r.code != want {
			t.Fatalf("pipelined group: got %v, want %d", r, want)
		}
	}
	step("pipelined MAIL, 3 RCPT, DATA", 1)
	c.write("Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n")
	if r := c.read(); r.code != 250 {
		t.Fatalf("after the dot: %v", r)
	}
	if r := c.read(); r.code != 221 {
		t.Fatalf("QUIT: %v", r)
	}
	c.expectClosed()
	time.Sleep(10 * time.Millisecond)
	if got := writes.Load(); got < 1 || got > 2 {
		t.Errorf("end of data and QUIT: %d writes", got)
	}
}

// addrConn is a connection that reports a given remote address.
type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// An IPv6 client is counted by its /84 (node.ClientKey): its other addresses there share
// one share of the per-IP limit, another /84 has its own.
func TestPerIPLimitCountsAnIPv6ClientByItsPrefix(t *testing.T) {
	tr := newConnTracker(SMTPConfig{MaxConnsPerIP: 2, MaxConns: 100})
	from := func(ip string) refusal {
		_, why := tr.admit(addrConn{remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 25}})
		return why
	}
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2"} {
		if why := from(ip); why != admitted {
			t.Fatalf("%s: refused (%d) under the limit", ip, why)
		}
	}
	if why := from("2001:db8:1:2:0:fff::9"); why != overPerIP {
		t.Fatalf("a third address of the same /84: %d, want overPerIP", why)
	}
	if why := from("2001:db8:1:3::1"); why != admitted {
		t.Fatalf("another /84: %d, want admitted", why)
	}
	if why := from("192.0.2.1"); why != admitted {
		t.Fatalf("IPv4: %d, want admitted", why)
	}
}

// Only an SMTP server's writes are read as go-smtp's replies: a POP3
// message's text that starts with "220" or "500 5.4.0 " must not make
// its connection count as TLS or as one to linger on.
func TestOnlySMTPWritesAreReadAsReplies(t *testing.T) {
	for _, smtp := range []bool{false, true} {
		tr := newConnTracker(SMTPConfig{MaxConnsPerIP: 2, MaxConns: 10})
		tr.smtpReplies = smtp
		server, client := net.Pipe()
		defer client.Close()
		c := &trackedConn{Conn: server, tracker: tr, start: time.Now()}
		for _, text := range []string{"220 greeting\r\n", "220 2.0.0 Ready to start TLS\r\n", "500 5.4.0 Too long line\r\n"} {
			if _, err := c.Write([]byte(text)); err != nil {
				t.Fatal(err)
			}
		}
		if c.underTLS.Load() != smtp || c.lingerWanted.Load() != smtp {
			t.Errorf("SMTP server %v: under TLS %v, lingering wanted %v; want both %v",
				smtp, c.underTLS.Load(), c.lingerWanted.Load(), smtp)
		}
		server.Close()
	}
}
