package frontend

import (
	"strings"
	"testing"
	"time"
)

// TestIMAPByeAfterHalfWrittenUpdate: the drain's BYE that finds an IDLE
// update half written (the library flushes a response over 4 KiB in
// parts) follows that response, and is still the last line.
func TestIMAPByeAfterHalfWrittenUpdate(t *testing.T) {
	for _, size := range []int{5000, imapHoldLine + 100} { // held whole; too long to hold
		cc := &captureConn{}
		c := &imapConn{Conn: cc, held: -1, srv: &IMAPServer{cfg: IMAPConfig{WriteTimeout: time.Minute}}}
		update := "* FLAGS (" + strings.Repeat("k ", size/2) + ")\r\n"
		if _, err := c.Write([]byte(update[:4096])); err != nil {
			t.Fatal(err)
		}
		c.queueBye(imapShutdownBye) // the reading goroutine, at a command boundary
		for _, w := range []string{update[4096:], "* 3 EXISTS\r\n", "i OK IDLE completed\r\n"} {
			if _, err := c.Write([]byte(w)); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
		if got, want := cc.out.String(), update+imapShutdownBye; got != want {
			t.Errorf("update of %d octets: the client got %q...%q, want the update, then BYE, then nothing",
				len(update), got[:min(len(got), 20)], got[max(0, len(got)-60):])
		}
	}
}

// TestIMAPByeNotInsideAResponseAfterALiteral: a response goes on after
// each of its literals ("* 1 FETCH (BODY[] {5}\r\nhello UID 1)\r\n"), so
// a BYE queued when a literal has just ended (Close or Shutdown's
// deadline during a FETCH) waits for the end of that response's line.
func TestIMAPByeNotInsideAResponseAfterALiteral(t *testing.T) {
	for _, parts := range [][]string{
		{"* 1 FETCH (BODY[] {5}\r\n", "hello", " UID 1)\r\n"},
		{"* 1 FETCH (BODY[HEADER] {3}\r\nabc", " BODY[TEXT] {0}\r\n", " UID 1)\r\n"},
		{"* 1 FETCH (BINARY[1] ~{2}\r\n", "\x00\x01", ")\r\n"},
		// A line too long to hold (imapHoldLine) that announces a literal.
		{"* 1 FETCH (BODY[HEADER.FIELDS (" + strings.Repeat("X-Field ", imapHoldLine/8) + "Subject)] {3}\r\n", "abc", ")\r\n"},
	} {
		cc := &captureConn{}
		c := &imapConn{Conn: cc, held: -1, srv: &IMAPServer{cfg: IMAPConfig{WriteTimeout: time.Minute}}}
		for i, w := range append(parts, "a OK FETCH completed\r\n") {
			if i == len(parts)-1 {
				c.queueBye(imapShutdownBye) // after the literal, before the rest of its line
			}
			if _, err := c.Write([]byte(w)); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
		if got, want := cc.out.String(), strings.Join(parts, "")+imapShutdownBye; got != want {
			t.Errorf("the client got %q, want %q", got, want)
		}
	}
}
