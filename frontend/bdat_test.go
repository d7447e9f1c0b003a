package frontend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"

	"powermail/frontend/internal/testtls"
	"powermail/node"
)

// RFC 3030 CHUNKING: BDAT chunks are binary-exact, no dot-stuffing, and
// make one Deliver call.
func TestBDAT(t *testing.T) {
	f := newFakeDeliverer()
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	c.begin("alice@example.com")
	chunks := []string{"Subject: chunked\r\n\r\n.no stuffing\r\n", "\x00\xff binary\r\n.\r\n", "end\r\n"}
	for i, ch := range chunks {
		last := ""
		if i == len(chunks)-1 {
			last = " LAST"
		}
		c.write(fmt.Sprintf("BDAT %d%s\r\n%s", len(ch), last, ch))
		want := 250
		r := c.read()
		checkReply(t, "BDAT", r, want, "2.0.0")
	}
	_, got := splitTrace(t, f.lastDelivery(t).body)
	if want := strings.Join(chunks, ""); got != want {
		t.Errorf("content %q, want %q", got, want)
	}
	if n := len(f.allDeliveries()); n != 1 {
		t.Errorf("%d Deliver calls", n)
	}
	// A second transaction on the same connection works.
	c.expect("MAIL FROM:<s@remote.test>", 250, "")
	c.expect("RCPT TO:<bob@example.com>", 250, "")
	c.write("BDAT 0 LAST\r\n")
	checkReply(t, "BDAT 0 LAST", c.read(), 250, "2.0.0")
}

// Pipelined BDAT (RFC 3030 with RFC 2920): all chunks sent at once.
func TestBDATPipelined(t *testing.T) {
	f := newFakeDeliverer()
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	c.write("MAIL FROM:<s@remote.test>\r\nRCPT TO:<team@example.com>\r\nBDAT 5\r\nhello" +
		"BDAT 7 LAST\r\n world\n" + "NOOP\r\n")
	for _, want := range []int{250, 250, 250, 250, 250} {
		if r := c.read(); r.code != want {
			t.Fatalf("got %v, want %d", r, want)
		}
	}
	// The bare LF that ends the message is stored as CRLF (crlfReader).
	if _, got := splitTrace(t, f.lastDelivery(t).body); got != "hello world\r\n" {
		t.Errorf("content %q", got)
	}
}

// BDAT over MaxMessageBytes is 552 5.3.4, checked before the chunk is
// passed on; go-smtp then reads the chunk past under its line limit, so
// a chunk of text lines leaves the session going, and one whose line
// is longer than the limit ends the connection after the 552, with none
// of its octets taken for a command.
func TestBDATOversize(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chunk string
		after func(c *tclient)
	}{
		{"text lines", strings.Repeat(strings.Repeat("a", 78)+"\r\n", 512), func(c *tclient) {
			c.expect("NOOP", 250, "")
		}},
		{"no line ends", strings.Repeat("a", 40<<10), func(c *tclient) {
			c.expectClosed()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, f := dialSmallLimit(t)
			c.begin("alice@example.com")
			c.write(fmt.Sprintf("BDAT %d\r\n%s", len(tc.chunk), tc.chunk))
			checkReply(t, "first chunk", c.read(), 250, "")
			c.write(fmt.Sprintf("BDAT %d LAST\r\n%s", len(tc.chunk), tc.chunk))
			checkReply(t, "second chunk", c.read(), 552, "5.3.4")
			tc.after(c)
			for _, d := range f.allDeliveries() {
				if d.readErr == nil {
					t.Errorf("a Deliver call saw a complete oversize body")
				}
			}
		})
	}
}

// A Deliver that fails early does not make go-smtp parse the remaining
// pipelined chunks as commands: the chunks are consumed and the error is
// the reply to the last one.
func TestBDATEarlyDeliverError(t *testing.T) {
	f := newFakeDeliverer()
	f.deliverHook = func(context.Context, node.Message, io.Reader) (node.DeliveryResult, error) {
		return node.DeliveryResult{}, fmt.Errorf("no quorum: %w", node.ErrUnavailable)
	}
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	evil := "RCPT TO:<bob@example.com>\r\n"
	c.write("MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\n" +
		fmt.Sprintf("BDAT 3\r\nabcBDAT %d\r\n%sBDAT 2 LAST\r\nxy", len(evil), evil) + "NOOP\r\n")
	c.expectCodes(250, 250, 250, 250, 451, 250)
}

// A BDAT refused because no RCPT was accepted still has its chunk read
// past (RFC 3030 §2: a chunk follows its command whatever the reply). A
// relay that pipelines BDAT with its recipients would otherwise have
// the lines of the message it relays run as commands: a transaction of
// the message's own choosing, from the relay's address (SMTP smuggling).
func TestBDATRefusedChunkIsNotCommands(t *testing.T) {
	for _, mail := range []bool{true, false} {
		t.Run(fmt.Sprintf("MAIL %v", mail), func(t *testing.T) {
			f := newFakeDeliverer()
			_, addr := startServer(t, testConfig(), f)
			c := dial(t, addr)
			c.ehlo()
			smuggled := "RSET\r\nMAIL FROM:<ceo@bank.test>\r\nRCPT TO:<alice@example.com>\r\n" +
				"DATA\r\nFrom: ceo@bank.test\r\n\r\nPay now.\r\n.\r\n"
			head := ""
			want := []int{502, 250}
			if mail {
				head = "MAIL FROM:<s@remote.test>\r\nRCPT TO:<nobody@example.com>\r\n"
				want = []int{250, 550, 502, 250}
			}
			c.write(head + fmt.Sprintf("BDAT %d LAST\r\n%s", len(smuggled), smuggled) + "NOOP\r\n")
			c.expectCodes(want...)
			c.expect("QUIT", 221, "")
			if n := len(f.allDeliveries()); n != 0 {
				t.Fatalf("%d deliveries from the chunk's lines", n)
			}
		})
	}
}

// After a 552 for an oversize chunk the transaction is reset, and the
// chunks the client had pipelined behind it are refused (502) and read
// past, not run as commands.
func TestBDATPipelinedAfter552(t *testing.T) {
	c, f := dialSmallLimit(t)
	big := strings.Repeat(strings.Repeat("b", 62)+"\r\n", 1100) // 70,400 octets
	tail := "RSET\r\nNOOP\r\n"
	c.write("MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\n" +
		fmt.Sprintf("BDAT %d\r\n%sBDAT %d LAST\r\n%s", len(big), big, len(tail), tail) + "NOOP\r\n")
	c.expectCodes(250, 250, 552, 502, 250)
	c.expect("QUIT", 221, "")
	if n := len(f.allDeliveries()); n != 0 {
		t.Fatalf("%d deliveries", n)
	}
}

// go-smtp lifts its line limit while a BDAT chunk is read. A command
// line between two chunks is held to the limit again, or textproto would
// hold all of it in memory (a client on port 25 could make the server
// hold gigabytes per connection): 500 5.4.0, as for any command line
// that is too long, and the connection is closed.
func TestBDATLongLineBetweenChunks(t *testing.T) {
	f := newFakeDeliverer()
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	c.begin("alice@example.com")
	c.write("BDAT 5\r\nhello")
	checkReply(t, "first chunk", c.read(), 250, "2.0.0")

	// 64 MiB without a line end, written until the server stops reading.
	sent := make(chan int64, 1)
	go func() {
		block := []byte(strings.Repeat("A", 64<<10))
		var n int64
		for range 1024 {
			k, err := c.conn.Write(block)
			n += int64(k)
			if err != nil {
				break
			}
		}
		sent <- n
	}()
	code, msg, err := c.tp.ReadResponse(0)
	if err == nil {
		checkReply(t, "long line", resp{code: code, msg: msg}, 500, "5.4.0")
	}
	if n := <-sent; n >= 64<<20 {
		t.Fatalf("the server read a %d-octet command line", n)
	}
	if len(f.allDeliveries()) != 0 && f.lastDelivery(t).readErr == nil {
		t.Error("a body was delivered whole")
	}
}

// The limit between chunks does not touch a large message sent in large
// pipelined chunks, in plaintext or under TLS, where the connection sees
// records rather than lines.
func TestBDATLargeChunksPass(t *testing.T) {
	f := newFakeDeliverer()
	_, plain, implicit, roots := startTLSServers(t, f)

	chunk := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB, no line ends
	for _, useTLS := range []bool{false, true} {
		c := dialRaw(t, plain)
		if useTLS {
			c = dialRaw(t, implicit)
			tc := tls.Client(c.conn, &tls.Config{ServerName: "mx.test", RootCAs: roots})
			c.conn, c.tp = tc, textproto.NewConn(tc)
		}
		checkReply(t, "greeting", c.read(), 220, "")
		c.ehlo()
		var b strings.Builder
		b.WriteString("MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\n")
		for i := range 5 {
			last := ""
			if i == 4 {
				last = " LAST"
			}
			fmt.Fprintf(&b, "BDAT %d%s\r\n%s", len(chunk), last, chunk)
		}
		go func(conn net.Conn, s string) { _, _ = io.WriteString(conn, s) }(c.conn, b.String())
		for i := range 7 {
			checkReply(t, fmt.Sprintf("reply %d (TLS %v)", i, useTLS), c.read(), 250, "2.0.0")
		}
		// One line without a line end: it is stored with CRLF added.
		if _, got := splitTrace(t, f.lastDelivery(t).body); len(got) != 5*len(chunk)+2 {
			t.Fatalf("TLS %v: delivered %d octets, want %d", useTLS, len(got), 5*len(chunk)+2)
		}
	}
}

// dialSmallLimit starts a server taking messages of up to 64 KiB (the
// RFC floor) and returns a client past EHLO.
func dialSmallLimit(t *testing.T) (*tclient, *fakeDeliverer) {
	t.Helper()
	cfg := testConfig()
	cfg.MaxMessageBytes = 64 << 10
	f := newFakeDeliverer()
	_, addr := startServer(t, cfg, f)
	c := dial(t, addr)
	c.ehlo()
	return c, f
}

// startTLSServers starts an SMTP server with the test certificate, on a
// plaintext listener (STARTTLS offered) and an implicit-TLS one, and
// returns it with both addresses and the roots that trust it.
func startTLSServers(t *testing.T, d Deliverer) (srv *SMTPServer, plain, implicit string, roots *x509.CertPool) {
	t.Helper()
	cfg := testConfig()
	cfg.TLS, roots = testtls.Config(t)
	srv, err := NewSMTPServer(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	lp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	li, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lp)
	go srv.ServeTLS(li)
	return srv, lp.Addr().String(), li.Addr().String(), roots
}
