package frontend

import (
	"fmt"
	"testing"
	"time"

	"powermail/frontend/internal/testtls"
	"powermail/node/nodetest"
)

// Several pipelined messages in one write, their bodies holding lines
// that read as unparsable BDAT commands and lines that only look like
// the end of data: every message is delivered whole.
func TestGatePipelinedMessagesInOneWrite(t *testing.T) {
	f := newFakeDeliverer()
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	bodies := []string{
		"BDAT 1 FOO\r\n.\n\r\n",
		"x\r\n.\rBDAT\r\n\r.\r\n",
		"..\r\nBDAT -1\r\n",
	}
	var all string
	var want []int
	for i, b := range bodies {
		all += "MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n" + b + ".\r\n"
		want = append(want, 250, 250, 354, 250)
		if i == 1 {
			all += "MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\nBDAT 12 LAST\r\nBDAT 2 FOO\r\n"
			want = append(want, 250, 250, 250)
		}
	}
	c.write(all + "NOOP\r\n")
	c.expectCodes(append(want, 250)...)
	var got []string
	for _, d := range f.allDeliveries() {
		_, content := splitTrace(t, d.body)
		got = append(got, content)
	}
	// go-smtp's reader drops a dot that starts a line, and the CR after
	// it; a bare LF becomes CRLF (crlf.go).
	wantBodies := []string{"BDAT 1 FOO\r\n\r\n\r\n", "x\r\nBDAT\r\n\r.\r\n", "BDAT 2 FOO\r\n", ".\r\nBDAT -1\r\n"}
	if fmt.Sprint(got) != fmt.Sprint(wantBodies) {
		t.Errorf("delivered %q, want %q", got, wantBodies)
	}
}

// The end of a DATA body split across TCP writes at every offset, with a
// line reading as an unparsable BDAT right behind it in the body.
func TestGateDataEndSplitAtEveryOffset(t *testing.T) {
	f := newFakeDeliverer()
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	tail := "BDAT 9 FOO\r\n.\r\nNOOP\r\n"
	for i := range len(tail) + 1 {
		c.write("MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
		c.expectCodes(250, 250, 354)
		c.write("a\r\n" + tail[:i])
		time.Sleep(5 * time.Millisecond)
		c.write(tail[i:])
		c.expectCodes(250, 250)
		if _, got := splitTrace(t, f.lastDelivery(t).body); got != "a\r\nBDAT 9 FOO\r\n" {
			t.Fatalf("split at %d: delivered %q", i, got)
		}
	}
}

// RFC 3207 §4.2: commands pipelined behind STARTTLS are discarded, even
// one that reads as an unparsable BDAT.
func TestGateStartTLSPipelined(t *testing.T) {
	cfg := testConfig()
	serverTLS, roots := testtls.Config(t)
	cfg.TLS = serverTLS
	_, addr := startServer(t, cfg, newFakeDeliverer())
	c := dial(t, addr)
	c.ehlo()
	c.write("STARTTLS\r\nBDAT 1 FOO\r\nNOOP\r\n")
	c.expectCodes(220)
	c.upgradeTLS(roots)
	c.ehlo()
	c.expect("NOOP", 250, "")
}

// A client that sends half a command line and waits is timed out.
func TestGateHalfLineTimesOut(t *testing.T) {
	cfg := testConfig()
	cfg.ReadTimeout = 300 * time.Millisecond
	_, addr := startServer(t, cfg, newFakeDeliverer())
	c := dial(t, addr)
	c.ehlo()
	start := time.Now()
	c.write("BDAT 5")
	lines := c.expectClosed()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
	t.Logf("replies: %q", lines)
}

// A line after a cancelled AUTH is a command again; an AUTH response is
// none, whatever it reads.
func TestGateAuthCancelAndResponse(t *testing.T) {
	cl := nodetest.Start(t, 1)
	cl.AddMailboxes("pw-alice", "alice@example.com")
	addr := startSubmission(t, cl.Nodes[0], cl.Nodes[0])
	c := dial(t, addr)
	c.ehlo()
	c.expect("AUTH PLAIN", 334, "")
	if r := c.cmd("BDAT 1 FOO"); r.code/100 == 2 || r.code == 334 {
		t.Fatalf("response BDAT 1 FOO: %v", r)
	}
	c.expect("AUTH LOGIN", 334, "")
	c.expect("*", 501, "")
	c.expect("AUTH LOGIN "+b64("alice@example.com"), 334, "")
	c.expect(b64("pw-alice"), 235, "")
	c.write("BDAT 1 FOO\r\n")
	checkReply(t, "BDAT 1 FOO", c.read(), 501, "5.5.4")
	if rest := c.expectClosed(); len(rest) != 0 {
		t.Errorf("after the 501: %q", rest)
	}
}
