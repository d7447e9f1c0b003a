package frontend_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"powermail/node/nodetest"
)

// A Dovecot Maildir holds its messages with LF line ends (mail_save_crlf
// is off by default). Restored and downloaded over POP3, such a message
// must be counted in LIST and STAT as the octets RETR sends (RFC 1939
// §11: sizes are exact, counted with CRLF line ends): clients such as
// Python's poplib compare them, and some cut the message at the size.
func TestPOP3RestoredDovecotMaildropSizesMatchRetr(t *testing.T) {
	c := nodetest.Start(t, 1)
	const box = "moved@example.com"
	c.AddMailboxes("pw", box)
	msgs := []string{
		"From: a@example.net\nSubject: lf\n\nline one\n.dot line\nlast\n",
		"Subject: no final line end\n\nbody",
		"Subject: crlf\r\n\r\nalready crlf\r\n",
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	for i, m := range msgs {
		h := &tar.Header{Name: fmt.Sprintf("Maildir/cur/%d.M%d.host:2,S", 1_700_000_000+i, i), Mode: 0o600,
			Size: int64(len(m)), ModTime: time.Unix(1_700_000_000, 0)}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := c.Nodes[0].RestoreMailbox(t.Context(), box, &tarball, 0)
	if err != nil || res.Added != len(msgs) {
		t.Fatalf("restore: %+v, %v", res, err)
	}

	_, addr := pop3Serve(t, c.Nodes[0], pop3TestAuth(c.Nodes[0], true), pop3TestConfig(), false)
	cl := pop3Dial(t, addr)
	cl.login(box, "pw")
	var total int
	for i, m := range msgs {
		want := strings.ReplaceAll(strings.ReplaceAll(m, "\r\n", "\n"), "\n", "\r\n")
		if !strings.HasSuffix(want, "\r\n") {
			want += "\r\n"
		}
		_, body := cl.multi(fmt.Sprintf("RETR %d", i+1))
		if body != want {
			t.Errorf("RETR %d = %q, want %q", i+1, body, want)
		}
		if got := cl.ok(fmt.Sprintf("LIST %d", i+1)); got != fmt.Sprintf("+OK %d %d", i+1, len(body)) {
			t.Errorf("LIST %d = %q, but RETR sent %d octets", i+1, got, len(body))
		}
		total += len(body)
	}
	if got := cl.ok("STAT"); got != fmt.Sprintf("+OK %d %d", len(msgs), total) {
		t.Errorf("STAT = %q, but RETR sent %d octets in all", got, total)
	}
	cl.quit()
}
