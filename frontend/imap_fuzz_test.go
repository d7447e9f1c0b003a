package frontend

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// imapFuzzSeeds are command scripts sent after LOGIN and SELECT INBOX.
var imapFuzzSeeds = []string{
	"1 FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE BODY.PEEK[])",
	"1 FETCH 1 (BODY[1.2.MIME] BODY[HEADER.FIELDS.NOT (To)] BODY[]<5.10> BINARY[2] BINARY.SIZE[1] RFC822)",
	"1 UID FETCH 2:* FULL\r\n2 FETCH * FAST\r\n3 FETCH 4294967295 ALL",
	"1 STORE 1:* +FLAGS (\\Deleted $kw)\r\n2 EXPUNGE\r\n3 UID EXPUNGE 1:*\r\n4 NOOP",
	"1 STORE 1 FLAGS.SILENT ()\r\n2 STORE 2 -FLAGS (\\Seen \\Recent)",
	"1 SEARCH OR (FROM x) (NOT BODY y) LARGER 10 SINCE 1-Jan-2000 UID 1:* $",
	"1 SEARCH RETURN (MIN MAX COUNT SAVE) CHARSET UTF-8 TEXT \"\"\r\n2 FETCH $ (UID)\r\n3 UID SEARCH HEADER Subject \"\"",
	"1 COPY 1:* Trash\r\n2 MOVE 1 Junk\r\n3 UID MOVE 1:* \"No/Such\"\r\n4 COPY 1 INBOX",
	"1 CREATE \"a/b/\"\r\n2 RENAME a z\r\n3 DELETE z/b\r\n4 LIST \"\" *\r\n5 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (CHILDREN STATUS (MESSAGES SIZE))",
	"1 RENAME INBOX Old\r\n2 NOOP\r\n3 SELECT Old\r\n4 DELETE Old\r\n5 NOOP",
	"1 APPEND INBOX (\\Seen) \"01-Jan-2020 00:00:00 +0000\" {11}\r\nHello world\r\n2 APPEND INBOX {3+}\r\nabc",
	"1 APPEND INBOX ~{4}\r\n\x00\x01\x02\x03\r\n2 APPEND Nope {999999999}\r\n",
	"1 IDLE\r\nDONE\r\n2 IDLE\r\nnot done",
	"1 EXAMINE INBOX\r\n2 STORE 1 +FLAGS (\\Seen)\r\n3 CLOSE\r\n4 UNSELECT",
	"1 STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT APPENDLIMIT DELETED-STORAGE)",
	"1 ENABLE IMAP4rev2 UTF8=ACCEPT\r\n2 SEARCH ALL\r\n3 NAMESPACE\r\n4 CAPABILITY",
	"1 SELECT \"../bob@example.com/INBOX\"\r\n2 STATUS \"#shared\" (MESSAGES)\r\n3 SUBSCRIBE \"\"",
	"1 FETCH 0 (FLAGS)\r\n2 FETCH 1:0 (UID)\r\n3 FETCH * (BODY[0])\r\n4 FETCH 1 BODY[",
	"1 AUTHENTICATE PLAIN\r\n*\r\n2 STARTTLS\r\n3 LOGIN a b",
	"1 ID NIL\r\n2 ID (\"name\" \"x\")\r\n3 ID (\"odd\")\r\n4 ID\r\n5 ID (\"k\" {1}\r\nv)",
	"1 GETQUOTAROOT {5+}\r\nINBOX\r\n2 GETQUOTA {0}\r\n\r\n3 ID (\"a\" {2+}\r\nb\"\r\n4 GETQUOTAROOT ~{1+}\r\nx\r\n5 GETQUOTAROOT {9999999+}",
	"1 CREATE \"Tom & Jerry\"\r\n2 SELECT \"a\x01b\"\r\n3 LIST \"\" \"&\"\r\n4 SEARCH SINCE 99-Foo-2000\r\n5 APPEND INBOX \"99-Foo-2000 00:00:00 +0000\" {1}",
	"1 CREATE {5000}\r\n2 RENAME {5000+}\r\n" + strings.Repeat("x", 5000) + " y\r\n3 RENAME {1}\r\na {4097}",
}

// imapFuzzLog counts log records that mean a bug: a recovered panic, or
// an error the library answered NO [SERVERBUG] to (the client now gets
// BAD) that is not its refusal of the client's arguments.
type imapFuzzLog struct{ panics *atomic.Int64 }

func (h imapFuzzLog) Enabled(context.Context, slog.Level) bool { return true }
func (h imapFuzzLog) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") || r.Level >= slog.LevelWarn && strings.HasPrefix(r.Message, "imap: handling ") {
		h.panics.Add(1)
	}
	return nil
}
func (h imapFuzzLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h imapFuzzLog) WithGroup(string) slog.Handler      { return h }

// FuzzIMAPSession feeds arbitrary command bytes, after LOGIN and SELECT,
// to a server over loopback and checks: no panic (the library would
// recover it and log it), and the session ends once the client hangs up
// (nothing hangs, the per-IP slot is released), and no NO [SERVERBUG]
// reaches the client: what go-imap's parser answers that to ("FETCH 0")
// is the client's error (imap_quirks.go).
func FuzzIMAPSession(f *testing.F) {
	for _, s := range imapFuzzSeeds {
		f.Add([]byte(s + "\r\n"))
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) > 16<<10 {
			return
		}
		var panics atomic.Int64
		log := slog.New(imapFuzzLog{&panics})
		store := NewIMAPMemStore()
		store.AddMailbox("fuzz@example.com", "pw")
		store.Deliver("From: a@example.org\r\nSubject: one\r\n\r\nbody one\r\n", "fuzz@example.com")
		store.Deliver("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ny\r\n--b--\r\n", "fuzz@example.com")
		auth := NewAuthenticator(store, AuthConfig{AllowInsecure: true, FailureDelay: time.Microsecond, MaxDelay: time.Millisecond}, log)
		srv := NewIMAPServer(store, auth, IMAPConfig{PreAuthTimeout: 2 * time.Second, PollInterval: 50 * time.Millisecond}, log)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		defer srv.Close()

		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		read := make(chan struct{})
		go func() {
			defer close(read)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			io.Copy(&out, c)
		}()
		in := append([]byte("a LOGIN fuzz@example.com pw\r\nb SELECT INBOX\r\n"), script...)
		in = append(in, "\r\nz LOGOUT\r\n"...)
		c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		c.Write(in)
		c.(*net.TCPConn).CloseWrite() // EOF: a half-finished command cannot keep the server waiting
		<-read
		c.Close()

		deadline := time.Now().Add(5 * time.Second)
		for {
			srv.mu.Lock()
			live := len(srv.perIP)
			srv.mu.Unlock()
			if live == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("session still running 5 s after the client hung up; output:\n%s", out.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if n := panics.Load(); n > 0 {
			t.Fatalf("%d panics or library errors; output:\n%s", n, out.String())
		}
		if bytes.Contains(out.Bytes(), []byte("[SERVERBUG]")) {
			t.Fatalf("SERVERBUG; output:\n%s", out.String())
		}
	})
}
