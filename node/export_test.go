package node

import (
	"archive/tar"
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"powermail/fsm"
)

func TestMUTF7(t *testing.T) {
	for in, want := range map[string]string{
		"Sent":      "Sent",
		"R&D":       "R&-D",
		"Entwürfe":  "Entw&APw-rfe",
		"日本語":       "&ZeVnLIqe-",
		"a😀b":       "a&2D3eAA-b",
		"tab\there": "tab&AAk-here",
	} {
		if got := mutf7(in); got != want {
			t.Errorf("mutf7(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaildirNames(t *testing.T) {
	for in, want := range map[string]string{
		"INBOX":         "Maildir/",
		"inbox":         "Maildir/",
		"Sent":          "Maildir/.Sent/",
		"Archive/2024":  "Maildir/.Archive.2024/",
		"v1.2/Entwürfe": "Maildir/.v1&AC4-2.Entw&APw-rfe/",
	} {
		if got := maildirDir(in); got != want {
			t.Errorf("maildirDir(%q) = %q, want %q", in, got, want)
		}
	}
	var kw maildirKeywords
	m := fsm.Message{UID: 7, Size: 120, InternalDate: 1_700_000_000_123, Flags: []string{`\Seen`, "Work", `\Flagged`, "$Forwarded", `\Recent`, "work"}}
	if got, want := maildirName(m, 42, &kw), "1700000000.P7V42.powermail,S=120:2,FSab"; got != want {
		t.Errorf("maildirName = %q, want %q", got, want)
	}
	if got, want := kw.file(), "0 Work\n1 $Forwarded\n"; got != want {
		t.Errorf("dovecot-keywords = %q, want %q", got, want)
	}
}

// A body that fails its check in the middle of an export cuts the
// connection: the client never reads an archive that looks whole.
func TestExportCutOffByABadBody(t *testing.T) {
	c := newTestClusterWith(t, 1, func(cfg *Config) { cfg.BootstrapSettings = &BootstrapSettings{Replicas: 1, WriteQuorum: 1} })
	l := c.leader(10 * time.Second)
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	mustApply(t, l, addMailbox("a@example.com"))
	hashes := deliverN(t, l, 2, 200<<10) // several chunks each
	ctx := ctxT(t, 30*time.Second)
	if code, body := adminDo(t, l, "GET", "/v1/mailboxes/a@example.com/export", string(testSecret), ""); code != 200 || len(body) < 400<<10 {
		t.Fatalf("export of a sound mailbox: %d, %d octets", code, len(body))
	}
	if err := l.bodies.DamageKeepCRC(ctx, hashes[1], 1); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+l.AdminAddr()+"/v1/mailboxes/a@example.com/export", nil)
	req.Header.Set("Authorization", "Bearer "+string(testSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 || err == nil {
		t.Fatalf("export over a damaged body: %d, %d octets, read error %v; want the stream cut", resp.StatusCode, n, err)
	}
	route := "GET /v1/mailboxes/{address}/export"
	if ok, cut := testutil.ToFloat64(l.metrics.adminRequests.WithLabelValues(route, "200")), testutil.ToFloat64(l.metrics.adminRequests.WithLabelValues(route, "aborted")); ok != 1 || cut != 1 {
		t.Errorf("export requests counted: %v whole, %v cut off; want 1 and 1", ok, cut)
	}
	if code, body := adminDo(t, l, "GET", "/v1/mailboxes/nobody@example.com/export", string(testSecret), ""); code != 404 || !strings.Contains(body, "not_found") {
		t.Errorf("export of an unknown mailbox: %d %s", code, body)
	}
}

// A folder name written by export reads back the same in restore.
func TestMaildirFolderRoundTrip(t *testing.T) {
	for _, name := range []string{"INBOX", "Sent", "Archive/2024", "v1.2/Entwürfe", "R&D", "日本語/a😀b", "tab\there", "Maildir", "maildir/x"} {
		dir := strings.TrimSuffix(strings.TrimPrefix(maildirDir(name), "Maildir/"), "/")
		if got, ok := maildirFolder(dir); !ok || got != name {
			t.Errorf("%q -> %q -> %q (%v)", name, dir, got, ok)
		}
	}
	for _, root := range []string{"", "Maildir", "x", ".maildir", ".Maildir"} {
		if got, ok := maildirFolder(root); !ok || got != "INBOX" {
			t.Errorf("maildirFolder(%q) = %q, %v; want the root, INBOX", root, got, ok)
		}
	}
	for _, bad := range []string{".&AGE", ".&-&Zz!-", ".a..b"} {
		if got, ok := maildirFolder(bad); ok {
			t.Errorf("maildirFolder(%q) = %q, want refused", bad, got)
		}
	}
	if flags, unknown := maildirFlags("1.M1.h:2,FRSTPDbz", false, map[byte]string{'b': "Work"}); !slices.Equal(flags, []string{`\Flagged`, `\Answered`, `\Seen`, `\Deleted`, "$Forwarded", `\Draft`, "Work"}) || unknown != "z" {
		t.Errorf("flags %q, unknown %q", flags, unknown)
	}
	if flags, _ := maildirFlags("1.M1.h:2,S", true, nil); flags != nil {
		t.Errorf("a message in new/ got %q", flags)
	}
}

// A message expunged (and its body collected) while an export runs is
// left out of the archive, as if the export had read its folder a moment
// later; it does not cut off the export of everything else.
func TestExportSkipsAMessageExpungedMeanwhile(t *testing.T) {
	c := newTestClusterWith(t, 1, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 1, WriteQuorum: 1}
		cfg.GCIdle = testGCIdle
		cfg.GCInterval = time.Hour // rounds run by hand
	})
	l := c.leader(10 * time.Second)
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	mustApply(t, l, addMailbox("a@example.com"))
	ctx := ctxT(t, 30*time.Second)
	time.Sleep(testGCIdle) // the store's start-up grace
	deliverN(t, l, 3, 1000)
	w := &hookWriter{hook: func() {
		// The INBOX has been read: its second message goes, body and all.
		if _, err := l.Expunge(ctx, "a@example.com", "INBOX", []uint32{2}, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(testGCIdle + 50*time.Millisecond)
		if n, _, err := c.collectGarbage(ctx); err != nil || n != 1 {
			t.Fatalf("collect: %d bodies, %v", n, err)
		}
	}}
	if err := l.ExportMailbox(ctx, "a@example.com", w); err != nil {
		t.Fatalf("export while a message is expunged: %v", err)
	}
	var msgs []string
	tr := tar.NewReader(&w.buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(h.Name, "Maildir/cur/") && h.Name != "Maildir/cur/" {
			msgs = append(msgs, h.Name)
		}
	}
	if len(msgs) != 2 || !strings.Contains(msgs[0], ".P1V") || !strings.Contains(msgs[1], ".P3V") {
		t.Errorf("messages %q, want UIDs 1 and 3", msgs)
	}
}

// hookWriter runs hook once, at the first write of INBOX's cur/ (its
// folder has been read), and keeps what is written.
type hookWriter struct {
	buf  bytes.Buffer
	hook func()
	done bool
}

func (w *hookWriter) Write(p []byte) (int, error) {
	if !w.done && bytes.HasPrefix(p, []byte("Maildir/cur/\x00")) {
		w.done = true
		w.hook()
	}
	return w.buf.Write(p)
}

// A message's file time is its internal date to the second, as IMAP
// shows it, and as its name says: the tar header holds whole seconds,
// and rounding would move a date in the second half of a second (at
// 23:59:59.6, to the next day) on the way through export and restore.
func TestExportFileTimeIsTheInternalDateTruncated(t *testing.T) {
	c := newTestClusterWith(t, 1, func(cfg *Config) { cfg.BootstrapSettings = &BootstrapSettings{Replicas: 1, WriteQuorum: 1} })
	l := c.leader(10 * time.Second)
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	mustApply(t, l, addMailbox("a@example.com"))
	ctx := ctxT(t, 30*time.Second)
	date := time.Date(2024, 12, 31, 23, 59, 59, 600e6, time.UTC)
	if _, err := l.Append(ctx, "a@example.com", "INBOX", nil, date, strings.NewReader("Subject: late\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := l.ExportMailbox(ctx, "a@example.com", &buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no message in the export: %v", err)
		}
		if strings.HasPrefix(h.Name, "Maildir/cur/") && h.Name != "Maildir/cur/" {
			if want := date.Truncate(time.Second); !h.ModTime.Equal(want) {
				t.Errorf("file time %v, want %v", h.ModTime.UTC(), want)
			}
			return
		}
	}
}

func TestRestoreTime(t *testing.T) {
	mtime := time.Unix(1_650_000_000, 0)
	for _, tc := range []struct {
		t    time.Time
		file string
		want time.Time
	}{
		{mtime, "1700000000.M1.h:2,S", mtime},
		{time.Time{}, "1700000000.M1.h:2,S", time.Unix(1_700_000_000, 0)},
		{time.Unix(0, 0), "1700000000.M1.h", time.Unix(1_700_000_000, 0)},
		{time.Time{}, "msg-from-elsewhere", time.Time{}},
		// A number that is no delivery time would make 1970 of the
		// missing file time after all.
		{time.Time{}, "1.eml", time.Time{}},
		{time.Unix(0, 0), "42:2,S", time.Time{}},
		{time.Unix(0, 0), "42.M1.h:2,S", time.Time{}},
		{time.Time{}, "100000000.M1.h", time.Unix(100_000_000, 0)},
	} {
		if got := restoreTime(tc.t, tc.file); !got.Equal(tc.want) {
			t.Errorf("restoreTime(%v, %q) = %v, want %v", tc.t, tc.file, got, tc.want)
		}
	}
}
