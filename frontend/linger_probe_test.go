package frontend

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// EndlessClient is a client that sends a line without end, as a broken
// or hostile one does, over a connection a test has brought to the
// state it wants (logged in, say). It is exported for the external
// tests of this package.
type EndlessClient struct {
	Conn net.Conn
	R    *bufio.Reader // reads Conn; may hold what the test read before

	stop    chan struct{}
	written chan error // the writer's end: nil when stopped, else the failed write
}

// endlessChunk is one write of the endless line.
var endlessChunk = []byte(strings.Repeat("y", 32<<10))

// Start sends start, then the line's octets 32 KiB a write, until Stop,
// a failed write, or max octets (0: no bound); with every > 0 it sends
// one chunk every that long (a client still trickling).
func (c *EndlessClient) Start(start string, max int, every time.Duration) {
	c.stop, c.written = make(chan struct{}), make(chan error, 1)
	go func() {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(c.Conn, start); err != nil {
			c.written <- err
			return
		}
		chunk := endlessChunk
		if every > 0 {
			chunk = chunk[:1024]
		}
		for sent := 0; max == 0 || sent < max; sent += len(chunk) {
			select {
			case <-c.stop:
				c.written <- nil
				return
			default:
			}
			if _, err := c.Conn.Write(chunk); err != nil {
				c.written <- err
				return
			}
			time.Sleep(every)
		}
		<-c.stop
		c.written <- nil
	}()
}

// Stop ends the sending and returns the write that failed, if one did.
func (c *EndlessClient) Stop() error {
	close(c.stop)
	return <-c.written
}

// WriteFailed waits up to d for the writer to end by itself (a failed
// write) and returns that write's error; ended is false if it did not.
func (c *EndlessClient) WriteFailed(d time.Duration) (ended bool, err error) {
	select {
	case err := <-c.written:
		c.written <- err // Stop reads it again
		return true, err
	case <-time.After(d):
		return false, nil
	}
}

// Reply reads lines until one starting with prefix, within 10 s, and
// returns it whole (with its CRLF), or "" and the read's error.
func (c *EndlessClient) Reply(prefix string) (string, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := c.R.ReadString('\n')
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(line, prefix) {
			return line, nil
		}
	}
}

// End reads what follows the reply until the connection ends, and
// returns how: nil for the server's orderly end (FIN, after TLS's
// close_notify if any), else the error, such as a reset.
func (c *EndlessClient) End() error {
	_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c.R)
	return err
}

// EndlessEndsCleanly runs the endless line of start on conn (r reads
// it) and checks what the client sees: the whole reply (the line that
// starts with prefix is want), then the connection's orderly end, and
// no reset, once the client stops sending on reading the reply, as a
// client that takes the server at its word does. It sends at most
// 768 KiB, less than LingerMaxBytes past what the server reads, so that
// the lingering close reads it all.
//
// A reset shows in one place only: the first read or write after it
// fails with it, and later ones see the end of input or a broken pipe.
// So the writes' end, the reads' end and a write after both are looked
// at: the last also catches a reset behind TLS's close_notify, which
// the TLS reader takes for the orderly end.
func EndlessEndsCleanly(t testing.TB, conn net.Conn, r *bufio.Reader, start, prefix, want string) {
	t.Helper()
	c := &EndlessClient{Conn: conn, R: r}
	c.Start(start, 768<<10, 0)
	reply, err := c.Reply(prefix)
	werr := c.Stop()
	if err != nil || reply != want {
		t.Errorf("reply %q (%v), want %q; the writes ended with %v", reply, err, want, werr)
		return
	}
	end := c.End()
	time.Sleep(50 * time.Millisecond) // for a reset sent behind the end
	raw := conn
	if tc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		raw = tc.NetConn()
	}
	_, after := raw.Write([]byte("\r\n"))
	if werr != nil || end != nil || after != nil {
		t.Errorf("after the reply: writes ended with %v, reads with %v (nil: the orderly end), a write after them with %v; want no reset", werr, end, after)
	}
}

// TrickleAfter sends start, which must take the client over the line
// limit, then 1 KiB every 20 ms without end, as a client that never
// reads would; it reads the reply (the line starting with prefix) and
// the server's orderly end, and returns the client and when the reply
// came.
func TrickleAfter(t testing.TB, conn net.Conn, r *bufio.Reader, start, prefix string) (*EndlessClient, time.Time) {
	t.Helper()
	c := &EndlessClient{Conn: conn, R: r}
	c.Start(start, 0, 20*time.Millisecond)
	t.Cleanup(func() { c.Stop() })
	if _, err := c.Reply(prefix); err != nil {
		t.Fatalf("no reply starting %q: %v", prefix, err)
	}
	replied := time.Now()
	if err := c.End(); err != nil {
		t.Fatalf("after the reply: %v, want the server's orderly end", err)
	}
	return c, replied
}

// CloseCutsLinger checks that closeServer, called while the server
// lingers on a client trickling after its reply, returns within a
// second, and ends the connection then.
func CloseCutsLinger(t testing.TB, conn net.Conn, r *bufio.Reader, start, prefix string, closeServer func() error) {
	t.Helper()
	c, _ := TrickleAfter(t, conn, r, start, prefix)
	begin := time.Now()
	if err := closeServer(); err != nil {
		t.Errorf("Close: %v", err)
	}
	took := time.Since(begin)
	ended, err := c.WriteFailed(time.Second)
	if took > time.Second || !ended {
		t.Errorf("Close during a lingering close took %v; the client's writes failed after: %v (%v)", took.Round(time.Millisecond), ended, err)
	}
}

// TestSMTPCloseCutsLinger: the server's Close does not wait out a
// lingering close (go-smtp's Close waits for a connection's Close).
func TestSMTPCloseCutsLinger(t *testing.T) {
	srv, addr := startServer(t, testConfig(), newFakeDeliverer())
	conn, r := dialGreeted(t, addr, false, nil)
	CloseCutsLinger(t, conn, r, "MAIL FROM:<"+strings.Repeat("y", 70<<10), "500", srv.Close)
}

// DialGreeting connects to addr (over TLS trusting roots, for
// serverName, when roots is not nil) and reads the greeting, which must
// start with greet.
func DialGreeting(t testing.TB, addr string, roots *x509.CertPool, serverName, greet string) (net.Conn, *bufio.Reader) {
	t.Helper()
	var conn net.Conn
	var err error
	if roots != nil {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: serverName})
	} else {
		conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if g, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(g, greet) {
		t.Fatalf("greeting %q, %v", g, err)
	}
	return conn, r
}
