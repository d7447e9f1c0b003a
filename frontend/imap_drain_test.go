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
