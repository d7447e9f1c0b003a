package node

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

// crlfModel is crlfWriter's contract, line by line.
func crlfModel(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' && (i == 0 || s[i-1] != '\r') {
			b.WriteByte('\r')
		}
		b.WriteByte(s[i])
	}
	switch {
	case s == "" || strings.HasSuffix(s, "\n"):
	case strings.HasSuffix(s, "\r"):
		b.WriteByte('\n')
	default:
		b.WriteString("\r\n")
	}
	return b.String()
}

// Every message, split into two writes at every octet, comes out as the
// model has it, and n counts what was passed on.
func TestCRLFWriterMatchesModel(t *testing.T) {
	for _, msg := range []string{
		"", "\n", "\r", "\r\n", "a", "a\n", "a\r", "a\r\r\n", "\n\n\r\n\n",
		"Subject: x\n\nbody\n.dot\r\nbare\rcr\nend",
		"mixed\r\nlf\ncrlf\r\n\r\n\n\r",
	} {
		want := crlfModel(msg)
		for cut := 0; cut <= len(msg); cut++ {
			var buf bytes.Buffer
			w := newCRLFWriter(&buf)
			for _, part := range []string{msg[:cut], msg[cut:]} {
				if n, err := w.Write([]byte(part)); n != len(part) || err != nil {
					t.Fatalf("%q cut at %d: Write = %d, %v", msg, cut, n, err)
				}
			}
			if err := w.finish(); err != nil {
				t.Fatal(err)
			}
			if buf.String() != want || w.n != int64(len(want)) {
				t.Fatalf("%q cut at %d: %q (n %d), want %q", msg, cut, buf.String(), w.n, want)
			}
		}
	}
}

// A Dovecot Maildir holds messages with LF line ends; a restore stores
// them with CRLF, in memory and through the spool file alike, so their
// sizes are what POP3 and IMAP send. Run again, the restore adds nothing,
// and neither does it for a body an older restore stored as the file had
// it.
func TestRestoreStoresCRLFLineEnds(t *testing.T) {
	c := newTestClusterWith(t, 1, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 1, WriteQuorum: 1}
		cfg.RestoreMemoryBytes = 40 // the second message goes through the spool file
	})
	n := c.leader(10 * time.Second)
	mustApply(t, n, &fsm.DomainAdd{Name: "example.com"})
	mustApply(t, n, addMailbox("a@example.com"))
	ctx := ctxT(t, 30*time.Second)
	small := "Subject: s\n\nsmall\n"
	large := "Subject: l\n\n" + strings.Repeat("a long line of text\n", 50) + "no end"
	legacy := "Subject: old\n\nstored with LF by an older restore\n"
	if _, err := n.Append(ctx, "a@example.com", "INBOX", nil, time.Now(), strings.NewReader(legacy)); err != nil {
		t.Fatal(err)
	}
	tarball := func() *bytes.Buffer {
		return buildTar(t,
			tarEntry{name: "Maildir/cur/1.M1.h:2,S", content: small},
			tarEntry{name: "Maildir/cur/2.M2.h:2,S", content: large},
			tarEntry{name: "Maildir/cur/3.M3.h:2,S", content: legacy},
		)
	}
	res, err := n.RestoreMailbox(ctx, "a@example.com", tarball(), 0)
	if err != nil || res.Added != 2 || res.Duplicates != 1 {
		t.Fatalf("restore: %+v, %v; want 2 added and the one stored before a duplicate", res, err)
	}
	v, err := n.View(ctx, "a@example.com", "INBOX")
	if err != nil || len(v.Messages) != 3 {
		t.Fatalf("view: %d messages, %v", len(v.Messages), err)
	}
	for i, want := range []string{crlfModel(small), crlfModel(large)} {
		m := v.Messages[i+1]
		body, err := n.OpenBody(ctx, m.Hash)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(body)
		body.Close()
		if err != nil || string(got) != want || m.Size != int64(len(want)) {
			t.Errorf("message %d: size %d, body %q (%v); want %d, %q", i+2, m.Size, got, err, len(want), want)
		}
	}
	res, err = n.RestoreMailbox(ctx, "a@example.com", tarball(), 0)
	if err != nil || res.Added != 0 || res.Duplicates != 3 {
		t.Fatalf("restore again: %+v, %v; want 3 duplicates", res, err)
	}
}
