package frontend_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"powermail/node/nodetest"
)

// BenchmarkPOP3Retr measures RETR of a 1 MiB message over loopback:
// streaming from the MailStore, CRLF and dot-stuffing, and the socket.
// "fake" isolates the protocol code; "cluster" reads through a real node
// (body from Pebble, after a read barrier for the login only).
//
//	go test -run '^$' -bench POP3Retr -benchmem ./frontend/
func BenchmarkPOP3Retr(b *testing.B) {
	msg := pop3BenchMessage(1 << 20)
	b.Run("fake", func(b *testing.B) {
		f := newPOP3Fake()
		f.addUser(pop3User, "secret")
		f.add(pop3User, msg)
		_, addr := pop3Serve(b, f, pop3TestAuth(f, true), pop3TestConfig(), false)
		pop3BenchRetr(b, addr, pop3User, "secret", len(msg))
	})
	b.Run("cluster", func(b *testing.B) {
		c := nodetest.Start(b, 3)
		c.AddMailboxes("pw", pop3User)
		c.Deliver(0, msg, pop3User)
		n := c.Nodes[1]
		_, addr := pop3Serve(b, n, pop3TestAuth(n, true), pop3TestConfig(), false)
		pop3BenchRetr(b, addr, pop3User, "pw", len(msg))
	})
}

func pop3BenchRetr(b *testing.B, addr, user, password string, size int) {
	cl := pop3Dial(b, addr)
	cl.login(user, password)
	status := fmt.Sprintf("+OK %d octets", size)
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		cl.send("RETR 1")
		if got := cl.readLine(); got != status {
			b.Fatalf("RETR status %q", got)
		}
		if err := pop3SkipMulti(cl.tp.R, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cl.quit()
}

// pop3SkipMulti reads up to and including the "\r\n.\r\n" that ends a
// multi-line response whose content ends in CRLF.
func pop3SkipMulti(r io.Reader, buf []byte) error {
	var tail []byte
	end := []byte("\r\n.\r\n")
	for {
		n, err := r.Read(buf)
		tail = append(tail, buf[:n]...)
		if bytes.HasSuffix(tail, end) {
			return nil
		}
		if len(tail) > len(end) {
			tail = append(tail[:0], tail[len(tail)-len(end):]...)
		}
		if err != nil {
			return err
		}
	}
}

// pop3BenchMessage is a message of about size octets of 76-character
// lines, some of them starting with a dot.
func pop3BenchMessage(size int) string {
	var b strings.Builder
	b.WriteString("From: bench@example.net\r\nSubject: bench\r\n\r\n")
	for i := 0; b.Len() < size; i++ {
		if i%10 == 0 {
			b.WriteString(".")
		}
		b.WriteString(strings.Repeat("x", 74))
		b.WriteString("\r\n")
	}
	return b.String()
}
