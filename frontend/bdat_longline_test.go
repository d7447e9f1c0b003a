package frontend

import (
	"strings"
	"testing"
)

// A BDAT line longer than go-smtp's 4 KiB read buffer (padded with
// blanks, which go-smtp's argument split skips) reaches go-smtp in more
// than one read. Its chunk follows the whole line, so the chunk's octets
// are counted only from the line's end, even when the chunk arrives on
// its own after the replies before it.
func TestBDATLineLongerThanReadBuffer(t *testing.T) {
	f := newFakeDeliverer()
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	line := "BDAT 2000" + strings.Repeat(" ", 5000) + "LAST\r\n"
	c.write("MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\n" + line)
	c.expectCodes(250, 250)
	chunk := strings.Repeat("x", 1998) + "\r\n"
	c.write(chunk)
	c.expectCodes(250)
	if _, got := splitTrace(t, f.lastDelivery(t).body); got != chunk {
		t.Errorf("delivered %d octets, want %d", len(got), len(chunk))
	}
	c.expect("NOOP", 250, "")
}
