package frontend

import (
	"strings"
	"testing"
	"time"
)

// An LMTP DATA body is read on go-smtp's LMTPData goroutine, which goes
// on reading a refused body to its end while the connection's goroutine
// writes the per-recipient replies: the gate's reply record is shared by
// the two (run with -race). A "BDAT 1 FOO" line in the rest of the body
// is content, and the session goes on.
func TestGateLMTPRefusedBodyReadWhileReplying(t *testing.T) {
	cfg := lmtpConfig()
	cfg.MaxMessageBytes = minMessageBytes
	f := newFakeDeliverer()
	_, addr := startServer(t, cfg, f)
	c := dial(t, addr)
	c.expect("LHLO client.test", 250, "")
	c.write("MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
	c.expectCodes(250, 250, 250, 354)
	line := strings.Repeat("y", 998) + "\r\n"
	// Past the limit by less than a read, so that the goroutine has read
	// all there is and waits for more while the replies are written.
	c.write("Subject: big\r\n\r\n" + strings.Repeat(line, minMessageBytes/len(line)+1))
	time.Sleep(100 * time.Millisecond)
	c.write("BDAT 1 FOO\r\n" + line + ".\r\nNOOP\r\n")
	c.expectCodes(552, 552, 250)
	noneStored(t, f)
}
