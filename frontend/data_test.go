package frontend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emersion/go-smtp"

	"powermail/node"
)

func TestEHLOAdvertisesExtensions(t *testing.T) {
	_, addr := startServer(t, testConfig(), newFakeDeliverer())
	c := dial(t, addr)
	r := c.ehlo()
	for _, ext := range []string{
		"PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
		"CHUNKING", fmt.Sprintf("SIZE %d", DefaultMaxMessageBytes), "DSN",
		fmt.Sprintf("LIMITS RCPTMAX=%d", DefaultMaxRecipients),
	} {
		if !slices.Contains(strings.Split(r.msg, "\n"), ext) {
			t.Errorf("EHLO reply lacks %q:\n%s", ext, r.msg)
		}
	}
	if strings.Contains(r.msg, "STARTTLS") {
		t.Errorf("STARTTLS advertised without TLS config:\n%s", r.msg)
	}
	c.expect("QUIT", 221, "2.0.0")
}

// The body arrives byte-exact behind the trace fields: dot-stuffing
// undone, 8-bit bytes and a lone dot-space line kept; only a bare LF
// becomes CRLF (crlfReader).
func TestDataBodyByteExact(t *testing.T) {
	f := newFakeDeliverer()
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()

	content := "Subject: t\r\n\r\n.leading dot\r\n..two dots\r\n. \r\nGr\xfc\xdfe \xe2\x82\xac 8-bit\r\nbare\r\nLF\r\n\r\n"
	stuffed := "Subject: t\r\n\r\n..leading dot\r\n...two dots\r\n.. \r\nGr\xfc\xdfe \xe2\x82\xac 8-bit\r\nbare\nLF\r\n\r\n"
	c.expect("MAIL FROM:<sender@remote.test> BODY=8BITMIME", 250, "2.0.0")
	c.expect("RCPT TO:<alice@example.com>", 250, "2.0.0")
	checkReply(t, "DATA", c.data(stuffed), 250, "2.0.0")

	d := f.lastDelivery(t)
	_, got := splitTrace(t, d.body)
	if got != content {
		t.Errorf("content differs:\n got %q\nwant %q", got, content)
	}
	if d.msg.From != "sender@remote.test" || !slices.Equal(d.msg.Mailboxes, []string{"alice@example.com"}) {
		t.Errorf("message = %+v", d.msg)
	}
	if !d.hasDeadline {
		t.Error("Deliver's context has no deadline")
	}
	if d.msg.Received.IsZero() {
		t.Error("Message.Received not set")
	}
}

var receivedRE = regexp.MustCompile(`^Return-Path: <sender@remote\.test>\r\n` +
	`Received: from client\.test \(\[127\.0\.0\.1\]\)\r\n` +
	`\tby mx\.test with ESMTP id ([A-Z2-7]{26})` +
	`(\r\n\tfor <alice@example\.com>)?;\r\n` +
	`\t([A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4})\r\n$`)

// RFC 5321 §4.4: Return-Path, then a Received stamp with a "for" clause
// only for a single recipient.
func TestReceivedHeader(t *testing.T) {
	for _, tc := range []struct {
		rcpts   []string
		wantFor bool
	}{
		{[]string{"alice@example.com"}, true},
		{[]string{"alice@example.com", "bob@example.com"}, false},
	} {
		f := newFakeDeliverer()
		_, addr := startServer(t, testConfig(), f)
		c := dial(t, addr)
		c.ehlo()
		r := c.transaction("sender@remote.test", tc.rcpts, "x\r\n")
		checkReply(t, "DATA", r, 250, "2.0.0")
		trace, _ := splitTrace(t, f.lastDelivery(t).body)
		m := receivedRE.FindStringSubmatch(trace)
		if m == nil {
			t.Fatalf("trace header does not match:\n%s", trace)
		}
		if hasFor := m[2] != ""; hasFor != tc.wantFor {
			t.Errorf("%d rcpts: for clause present = %v, want %v", len(tc.rcpts), hasFor, tc.wantFor)
		}
		if _, err := time.Parse(time.RFC1123Z, m[3]); err != nil {
			t.Errorf("date %q: %v", m[3], err)
		}
		if !strings.Contains(r.msg, m[1]) {
			t.Errorf("250 reply %q does not name id %s", r.msg, m[1])
		}
	}
}

// Many RCPTs, several of them reaching the same mailbox, make one Deliver
// call listing each mailbox once (Promise 5).
func TestManyRecipientsOneDeliverDeduped(t *testing.T) {
	f := newFakeDeliverer()
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	rcpts := []string{"alice@example.com", "al@example.com", "A.L@example.org", "team@example.com", "bob@example.com", "carol@example.com", "al@example.com"}
	checkReply(t, "DATA", c.transaction("", rcpts, "hi\r\n"), 250, "2.0.0")

	ds := f.allDeliveries()
	if len(ds) != 1 {
		t.Fatalf("%d Deliver calls, want 1", len(ds))
	}
	want := []string{"alice@example.com", "bob@example.com", "carol@example.com"}
	if !slices.Equal(ds[0].msg.Mailboxes, want) {
		t.Errorf("mailboxes = %q, want %q", ds[0].msg.Mailboxes, want)
	}
	if ds[0].msg.From != "" || !strings.HasPrefix(string(ds[0].body), "Return-Path: <>\r\n") {
		t.Errorf("null sender not kept: From=%q body=%q", ds[0].msg.From, ds[0].body[:20])
	}
}

// RFC 2920: a whole transaction sent in one write gets its replies in
// order.
func TestPipelining(t *testing.T) {
	f := newFakeDeliverer()
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.write("EHLO client.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\n" +
		"RCPT TO:<nobody@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
	for _, want := range []int{250, 250, 250, 550, 250, 354} {
		if r := c.read(); r.code != want {
			t.Fatalf("got %v, want %d", r, want)
		}
	}
	c.write("one\r\n.\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<carol@example.com>\r\nDATA\r\n")
	for _, want := range []int{250, 250, 250, 354} {
		if r := c.read(); r.code != want {
			t.Fatalf("got %v, want %d", r, want)
		}
	}
	c.write("two\r\n.\r\n")
	checkReply(t, "second message", c.read(), 250, "2.0.0")
	ds := f.allDeliveries()
	if len(ds) != 2 || !slices.Equal(ds[0].msg.Mailboxes, []string{"alice@example.com", "bob@example.com"}) {
		t.Fatalf("deliveries: %+v", ds)
	}
}

func TestRSETClearsTransaction(t *testing.T) {
	f := newFakeDeliverer()
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	c.begin("alice@example.com")
	c.expect("RSET", 250, "2.0.0")
	c.expect("DATA", 502, "5.5.1")
	c.expect("RCPT TO:<alice@example.com>", 502, "5.5.1")
	checkReply(t, "after RSET", c.transaction("s@remote.test", []string{"bob@example.com"}, "x\r\n"), 250, "")
	if got := f.lastDelivery(t).msg.Mailboxes; !slices.Equal(got, []string{"bob@example.com"}) {
		t.Errorf("mailboxes after RSET = %q", got)
	}
}

// Go-smtp's DATA limit: over MaxMessageBytes is 552 5.3.4, and the
// session stays usable.
func TestDataOversize(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMessageBytes = 64 << 10
	f := newFakeDeliverer()
	_, addr := startServer(t, cfg, f)
	c := dial(t, addr)
	c.ehlo()
	line := strings.Repeat("x", 998) + "\r\n"
	big := strings.Repeat(line, 70) // 70,000 octets
	checkReply(t, "oversize DATA", c.transaction("s@remote.test", []string{"alice@example.com"}, big), 552, "5.3.4")
	if d := f.lastDelivery(t); d.readErr == nil {
		t.Error("Deliver read the oversize body without error")
	}
	ok := strings.Repeat(line, 65) // 65,000 octets
	checkReply(t, "DATA under limit", c.transaction("s@remote.test", []string{"alice@example.com"}, ok), 250, "2.0.0")
	if _, got := splitTrace(t, f.lastDelivery(t).body); got != ok {
		t.Errorf("content under limit changed (len %d, want %d)", len(got), len(ok))
	}
}

// A DATA line over MaxLineLength gets 500 5.5.0, then go-smtp closes.
func TestDataLineTooLong(t *testing.T) {
	_, addr := startServer(t, testConfig(), newFakeDeliverer())
	c := dial(t, addr)
	c.ehlo()
	long := strings.Repeat("y", DefaultMaxLineLength+10) + "\r\n"
	checkReply(t, "long line", c.transaction("s@remote.test", []string{"alice@example.com"}, long), 500, "5.5.0")
	c.expectClosed()
}

// The DATA limit is exact, the line end counted (RFC 5321 §4.5.3.1.6),
// though go-smtp's own limit has slack for BDAT (newSMTPServer).
func TestDataLineLimitIsExact(t *testing.T) {
	for _, tc := range []struct {
		extra int
		code  int
	}{{0, 250}, {1, 500}} {
		f := newFakeDeliverer()
		_, addr := startServer(t, testConfig(), f)
		c := dial(t, addr)
		c.ehlo()
		line := strings.Repeat("z", DefaultMaxLineLength-2+tc.extra) + "\r\n"
		r := c.transaction("s@remote.test", []string{"alice@example.com"}, "a\r\n"+line+"b\r\n")
		if r.code != tc.code {
			t.Fatalf("line of %d octets: got %v, want %d", len(line), r, tc.code)
		}
		if tc.code == 250 {
			if _, got := splitTrace(t, f.lastDelivery(t).body); got != "a\r\n"+line+"b\r\n" {
				t.Errorf("content changed (len %d)", len(got))
			}
			continue
		}
		c.expectClosed()
		if len(f.allDeliveries()) != 0 && f.lastDelivery(t).readErr == nil {
			t.Error("a body with a long line was delivered whole")
		}
	}
}

// The DATA limit holds the line as stored: a bare LF is stored as CRLF
// (crlfReader), so it counts two octets, and a dot doubled for
// transparency is not counted (RFC 5321 §4.5.3.1.6), as it is not stored.
func TestDataLineLimitAsStored(t *testing.T) {
	max := DefaultMaxLineLength
	for _, tc := range []struct {
		name   string
		sent   string // as written after DATA, dot-stuffed
		stored string // the line as stored
		code   int
	}{
		{"bare LF at the limit", strings.Repeat("z", max-2) + "\n", strings.Repeat("z", max-2) + "\r\n", 250},
		{"bare LF over", strings.Repeat("z", max-1) + "\n", "", 500},
		{"stuffed dot at the limit", ".." + strings.Repeat("z", max-3) + "\r\n", "." + strings.Repeat("z", max-3) + "\r\n", 250},
		{"stuffed dot over", ".." + strings.Repeat("z", max-2) + "\r\n", "", 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDeliverer()
			_, addr := startServer(t, testConfig(), f)
			c := dial(t, addr)
			c.ehlo()
			r := c.transaction("s@remote.test", []string{"alice@example.com"}, "a\r\n"+tc.sent+"b\r\n")
			if r.code != tc.code {
				t.Fatalf("got %v, want %d", r, tc.code)
			}
			if tc.code != 250 {
				c.expectClosed()
				return
			}
			if _, got := splitTrace(t, f.lastDelivery(t).body); got != "a\r\n"+tc.stored+"b\r\n" {
				t.Errorf("content changed (len %d)", len(got))
			}
		})
	}
}

// The line count runs on across reads however the body is cut: read
// an octet at a time, a CR and its LF in two reads still end a line of
// maxLine octets, and a bare LF still counts two.
func TestBodyReaderLinesAcrossReads(t *testing.T) {
	const max = 1000
	for _, tc := range []struct {
		body string
		fits bool
	}{
		{strings.Repeat("z", max-2) + "\r\n" + strings.Repeat("y", max-2) + "\r\n", true},
		{strings.Repeat("z", max-1) + "\r\n", false},
		{strings.Repeat("z", max-2) + "\n" + strings.Repeat("y", max-2) + "\n", true},
		{strings.Repeat("z", max-1) + "\n", false},
		{"\n" + strings.Repeat("z", max-2) + "\r\n", true},
	} {
		b := &bodyReader{r: iotest.OneByteReader(strings.NewReader(tc.body)), maxLine: max}
		_, err := io.Copy(io.Discard, b)
		if got := !errors.Is(b.err, smtp.ErrTooLongLine); got != tc.fits || (tc.fits && err != nil) {
			t.Errorf("%q...: fits %v (err %v, %v), want %v", tc.body[max-3:], got, err, b.err, tc.fits)
		}
	}
}

func TestDeliverOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rcpts    []string
		setup    func(f *fakeDeliverer)
		code     int
		enh      string
		textPart string
	}{
		{"unavailable", []string{"alice@example.com"}, func(f *fakeDeliverer) {
			f.deliverErr = fmt.Errorf("replicas: %w", node.ErrUnavailable)
		}, 451, "4.3.0", ""},
		{"disk at its reserve", []string{"alice@example.com"}, func(f *fakeDeliverer) {
			f.deliverErr = fmt.Errorf("%w: %w: store body", node.ErrUnavailable, node.ErrInsufficientStorage)
		}, 452, "4.3.1", "storage"},
		{"unexpected error is temporary", []string{"alice@example.com"}, func(f *fakeDeliverer) {
			f.deliverErr = errors.New("disk on fire")
		}, 451, "4.3.0", ""},
		{"all over quota", []string{"alice@example.com", "bob@example.com"}, func(f *fakeDeliverer) {
			f.rejected["alice@example.com"] = fmt.Errorf("a: %w", node.ErrOverQuota)
			f.rejected["bob@example.com"] = fmt.Errorf("b: %w", node.ErrOverQuota)
		}, 452, "4.2.2", ""},
		{"all rejected, temporary wins", []string{"alice@example.com", "bob@example.com"}, func(f *fakeDeliverer) {
			f.rejected["alice@example.com"] = fmt.Errorf("a: %w", node.ErrUnknownRecipient)
			f.rejected["bob@example.com"] = fmt.Errorf("b: %w", node.ErrOverQuota)
		}, 452, "4.2.2", ""},
		{"all rejected, permanent", []string{"alice@example.com"}, func(f *fakeDeliverer) {
			f.rejected["alice@example.com"] = fmt.Errorf("deleted: %w", node.ErrUnknownRecipient)
		}, 550, "5.1.1", ""},
		{"INBOX out of UIDs", []string{"alice@example.com"}, func(f *fakeDeliverer) {
			f.rejected["alice@example.com"] = fmt.Errorf("a: %w", node.ErrFolderFull)
		}, 552, "5.2.2", "mailbox full"},
		{"rejection with unknown error is temporary", []string{"alice@example.com"}, func(f *fakeDeliverer) {
			f.rejected["alice@example.com"] = errors.New("?")
		}, 451, "4.3.0", ""},
		{"partial rejection still 250", []string{"alice@example.com", "bob@example.com"}, func(f *fakeDeliverer) {
			f.rejected["bob@example.com"] = fmt.Errorf("b: %w", node.ErrOverQuota)
		}, 250, "2.0.0", "(1 of 2 mailboxes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDeliverer()
			f.set(tc.setup)
			_, addr := startServer(t, testConfig(), f)
			c := dial(t, addr)
			c.ehlo()
			r := c.transaction("s@remote.test", tc.rcpts, "x\r\n")
			checkReply(t, tc.name, r, tc.code, tc.enh)
			if !strings.Contains(r.msg, tc.textPart) {
				t.Errorf("reply %v lacks %q", r, tc.textPart)
			}
			c.expect("NOOP", 250, "") // the session survives
		})
	}
}

// A Deliver that gives up early is answered 451 once the client has sent
// the whole message; one that claims success without reading it all is
// not believed.
func TestDeliverMustConsumeBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"early error", fmt.Errorf("no quorum: %w", node.ErrUnavailable)},
		{"success without reading", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDeliverer()
			f.deliverHook = func(_ context.Context, _ node.Message, body io.Reader) (node.DeliveryResult, error) {
				_, _ = io.CopyN(io.Discard, body, 10)
				return node.DeliveryResult{}, tc.err
			}
			_, addr := startServer(t, testConfig(), f)
			c := dial(t, addr)
			c.ehlo()
			body := strings.Repeat("line of text\r\n", 2000)
			checkReply(t, tc.name, c.transaction("s@remote.test", []string{"alice@example.com"}, body), 451, "4.3.0")
			c.expect("NOOP", 250, "")
		})
	}
}

// Close during a Deliver cancels its context; the client gets no 250.
func TestCloseCancelsDeliver(t *testing.T) {
	f := newFakeDeliverer()
	started := make(chan struct{})
	cancelled := make(chan struct{})
	f.deliverHook = func(ctx context.Context, _ node.Message, body io.Reader) (node.DeliveryResult, error) {
		_, _ = io.Copy(io.Discard, body)
		close(started)
		<-ctx.Done()
		close(cancelled)
		return node.DeliveryResult{}, fmt.Errorf("commit: %w", ctx.Err())
	}
	srv, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	c.begin("alice@example.com")
	c.expect("DATA", 354, "")
	c.write("x\r\n.\r\n")
	<-started
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("Deliver's context was not cancelled by Close")
	}
	for _, line := range c.expectClosed() {
		if strings.HasPrefix(line, "250") {
			t.Errorf("got %q after Close", line)
		}
	}
}

func TestBodyReaderRecordsOutcome(t *testing.T) {
	b := &bodyReader{r: io.MultiReader(strings.NewReader("abc"), errReader{errors.New("boom")})}
	data, err := io.ReadAll(b)
	if !bytes.Equal(data, []byte("abc")) || err == nil || b.err == nil || b.eof || b.n != 3 {
		t.Fatalf("data=%q err=%v state=%+v", data, err, b)
	}
	b = &bodyReader{r: strings.NewReader("abc")}
	if _, err := io.ReadAll(b); err != nil || !b.eof || b.err != nil {
		t.Fatalf("err=%v state=%+v", err, b)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
