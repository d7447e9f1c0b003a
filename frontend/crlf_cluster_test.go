package frontend_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"powermail/frontend"
	"powermail/node/nodetest"
)

// Mail that arrives with bare LF line ends, or without a final line end,
// is stored with CRLF line ends, so that every protocol reports one size
// for it and sends exactly that many octets: the index's size, POP3's
// LIST, STAT and RETR status and the octets RETR sends (RFC 1939 §11),
// IMAP's RFC822.SIZE and BODY[] (RFC 9051 §2.3.4, §7.5.2). Delivered over
// SMTP DATA and BDAT (a CR and its LF in different chunks, the last line
// unended) through a real node, and appended over IMAP.
func TestBareLFStoredWithCRLF(t *testing.T) {
	c := nodetest.Start(t, 1)
	n := c.Nodes[0]
	boxes := []string{"data@example.com", "bdat@example.com", "append@example.com"}
	c.AddMailboxes(imapPassword, boxes...)
	smtpAddr := startSMTPOnNode(t, n)
	_, pop3Addr := pop3Serve(t, n, pop3TestAuth(n, true), pop3TestConfig(), false)
	imapAddr := startIMAP(t, n, frontend.IMAPConfig{}, true)

	const content = "Subject: bare LF\r\nFrom: a@example.net\r\n\r\nline one\r\nmixed\rCR\r\n\r\nend\r\n"

	t.Run("DATA", func(t *testing.T) {
		s := smtpDialRaw(t, smtpAddr)
		s.cmds(t, "EHLO client.test", "MAIL FROM:<s@remote.test>", "RCPT TO:<data@example.com>")
		s.expect(t, "DATA", 354)
		s.write(t, "Subject: bare LF\nFrom: a@example.net\n\nline one\r\nmixed\rCR\n\nend\r\n.\r\n")
		s.reply(t, 250)
		checkSizesAgree(t, c, pop3Addr, imapAddr, "data@example.com", content)
	})
	t.Run("BDAT", func(t *testing.T) {
		s := smtpDialRaw(t, smtpAddr)
		s.cmds(t, "EHLO client.test", "MAIL FROM:<s@remote.test>", "RCPT TO:<bdat@example.com>")
		for _, ch := range []string{"Subject: bare LF\nFrom: a@example.net\n\nline one\r", "\nmixed\rCR\n\n", "end"} {
			s.write(t, fmt.Sprintf("BDAT %d\r\n%s", len(ch), ch))
			s.reply(t, 250)
		}
		s.write(t, "BDAT 0 LAST\r\n")
		s.reply(t, 250)
		checkSizesAgree(t, c, pop3Addr, imapAddr, "bdat@example.com", content)
	})
	t.Run("APPEND", func(t *testing.T) {
		cl := imapPlainSession(t, imapAddr, "append@example.com")
		raw := "Subject: bare LF\nFrom: a@example.net\n\nline one\nmixed\rCR\r\n\nend"
		appendMsg(t, cl, "INBOX", raw, nil)
		checkSizesAgree(t, c, pop3Addr, imapAddr, "append@example.com", content)
	})
}

// checkSizesAgree checks box's one message: its content after the trace
// fields is want, it has no bare LF, and the index, the body store, POP3
// and IMAP all give it the same size and the same octets.
func checkSizesAgree(t *testing.T, c *nodetest.Cluster, pop3Addr, imapAddr, box, want string) {
	t.Helper()
	n := c.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	view, err := n.View(ctx, box, "INBOX")
	if err != nil || len(view.Messages) != 1 {
		t.Fatalf("INBOX of %s: %d messages, %v", box, len(view.Messages), err)
	}
	m := view.Messages[0]
	rd, err := n.OpenBody(ctx, m.Hash)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := io.ReadAll(rd)
	rd.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(stored), want) {
		t.Errorf("stored %q, want it to end in %q", stored, want)
	}
	if i := bareLFAt(stored); i >= 0 {
		t.Errorf("stored body has a bare LF at %d: %q", i, stored)
	}
	size := len(stored)
	if int(m.Size) != size {
		t.Errorf("index size %d, body %d octets", m.Size, size)
	}

	p := pop3Dial(t, pop3Addr)
	p.login(box, imapPassword)
	if got, want := p.ok("STAT"), fmt.Sprintf("+OK 1 %d", size); got != want {
		t.Errorf("STAT %q, want %q", got, want)
	}
	if got, want := p.ok("LIST 1"), fmt.Sprintf("+OK 1 %d", size); got != want {
		t.Errorf("LIST 1 %q, want %q", got, want)
	}
	status, sent := p.multi("RETR 1")
	if want := fmt.Sprintf("+OK %d octets", size); status != want {
		t.Errorf("RETR status %q, want %q", status, want)
	}
	if sent != string(stored) {
		t.Errorf("RETR sent %d octets %q, stored %d %q", len(sent), sent, size, stored)
	}
	p.quit()

	cl := imapPlainSession(t, imapAddr, box)
	msgs, err := cl.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 || len(msgs[0].BodySection) != 1 {
		t.Fatalf("FETCH: %v, %d messages", err, len(msgs))
	}
	body := msgs[0].BodySection[0].Bytes
	if msgs[0].RFC822Size != int64(len(body)) || len(body) != size || !bytes.Equal(body, stored) {
		t.Errorf("RFC822.SIZE %d, BODY[] %d octets, stored %d", msgs[0].RFC822Size, len(body), size)
	}
}

// bareLFAt is the index of the first LF in b without a CR before it, or -1.
func bareLFAt(b []byte) int {
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			return i
		}
	}
	return -1
}

// startSMTPOnNode serves SMTP for node n on a loopback port until the
// test ends.
func startSMTPOnNode(t *testing.T, n frontend.Deliverer) string {
	t.Helper()
	srv, err := frontend.NewSMTPServer(frontend.SMTPConfig{
		Hostname:       "mx.test",
		ReadTimeout:    5 * time.Second,
		WriteTimeout:   5 * time.Second,
		ResolveTimeout: 2 * time.Second,
		DeliverTimeout: 5 * time.Second,
		Logger:         slog.New(slog.DiscardHandler),
	}, n)
	if err != nil {
		t.Fatal(err)
	}
	return serveLoopback(t, srv)
}

// smtpRaw writes raw octets to an SMTP server and reads its replies.
type smtpRaw struct {
	conn net.Conn
	tp   *textproto.Conn
}

func smtpDialRaw(t *testing.T, addr string) *smtpRaw {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	s := &smtpRaw{conn: conn, tp: textproto.NewConn(conn)}
	s.reply(t, 220)
	return s
}

func (s *smtpRaw) write(t *testing.T, raw string) {
	t.Helper()
	if _, err := io.WriteString(s.conn, raw); err != nil {
		t.Fatal(err)
	}
}

func (s *smtpRaw) reply(t *testing.T, code int) {
	t.Helper()
	if _, msg, err := s.tp.ReadResponse(code); err != nil {
		t.Fatalf("reply %q: %v, want %d", msg, err, code)
	}
}

func (s *smtpRaw) expect(t *testing.T, line string, code int) {
	t.Helper()
	s.write(t, line+"\r\n")
	s.reply(t, code)
}

// cmds sends each line and expects 250.
func (s *smtpRaw) cmds(t *testing.T, lines ...string) {
	t.Helper()
	for _, l := range lines {
		s.expect(t, l, 250)
	}
}
