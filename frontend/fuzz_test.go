package frontend

import (
	"bufio"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// replyLineRE is RFC 5321 §4.2's Reply-line, one line of it: a 3-digit
// code from 2yz to 5yz, then space, hyphen or the end.
var replyLineRE = regexp.MustCompile(`^[2-5][0-5][0-9]([ -][^\n]*)?\r\n$`)

// FuzzSMTPSession feeds arbitrary client byte streams to an SMTP and an
// LMTP server over loopback and checks: no panic (go-smtp would answer
// 421 4.0.0 "Internal server error", which counts as a failure), no hang,
// and only well-formed reply lines.
//
//	go test -run '^$' -fuzz FuzzSMTPSession -fuzztime 30s ./frontend/
func FuzzSMTPSession(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add([]byte(seed))
	}
	smtpCfg := testConfig()
	smtpCfg.ReadTimeout = 2 * time.Second
	smtpCfg.MaxMessageBytes = 64 << 10
	smtpCfg.MaxConnsPerIP = 1000
	lmtpCfg := smtpCfg
	lmtpCfg.LMTP = true
	_, smtpAddr := startServer(f, smtpCfg, newFakeDeliverer())
	_, lmtpAddr := startServer(f, lmtpCfg, newFakeDeliverer())

	f.Fuzz(func(t *testing.T, input []byte) {
		for _, addr := range []string{smtpAddr, lmtpAddr} {
			lines := fuzzExchange(t, addr, input)
			if len(lines) == 0 || !strings.HasPrefix(lines[0], "220 ") {
				t.Fatalf("no greeting: %q", lines)
			}
			for _, line := range lines {
				if !replyLineRE.MatchString(line) {
					t.Fatalf("malformed reply line %q for input %q", line, input)
				}
				if strings.Contains(line, "Internal server error") {
					t.Fatalf("server panicked: %q for input %q", line, input)
				}
			}
		}
	})
}

// fuzzExchange writes input, half-closes, and returns every complete
// reply line until the server closes. It fails the test if that takes
// longer than a deadline.
func fuzzExchange(t *testing.T, addr string, input []byte) []string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))

	type result struct {
		lines []string
		err   error
	}
	got := make(chan result, 1)
	go func() {
		var r result
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				if line != "" && err == io.EOF {
					r.lines = append(r.lines, line) // unterminated: reported as malformed
				}
				r.err = err
				got <- r
				return
			}
			r.lines = append(r.lines, line)
		}
	}()
	// The server may close early (QUIT, too many errors); a failed write
	// is not a finding.
	_, _ = conn.Write(input)
	_ = conn.(*net.TCPConn).CloseWrite()

	r := <-got
	var ne net.Error
	if errors.As(r.err, &ne) && ne.Timeout() {
		t.Fatalf("server hung: no close within deadline for input %q; got %q", input, r.lines)
	}
	return r.lines
}

var fuzzSeeds = []string{
	"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nSubject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
	"LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<team@example.com>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
	"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<bob@example.com>\r\nBDAT 5\r\nhelloBDAT 0 LAST\r\nQUIT\r\n",
	"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<bob@example.com>\r\nBDAT 100 LAST\r\nshort",
	"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<bob@example.com>\r\nBDAT 9999999999\r\n",
	"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<bob@example.com>\r\nBDAT 3\r\nabcRSET\r\nBDAT 2 LAST\r\nxy",
	// A BDAT size go-smtp cannot parse, with commands behind it (cmdGate),
	// and lines that only look like one: in a chunk, a DATA body, AUTH.
	"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<bob@example.com>\r\nBDAT 2\r\nabBDAT 10 FOO\r\nRSET\r\nMAIL FROM:<x@y.z>\r\n",
	"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<bob@example.com>\r\nbdat 13 last\r\nBDAT -1 LAST\r\nDATA\r\nBDAT\r\n.\n.\r\n",
	"EHLO c\r\nAUTH LOGIN\r\nBDAT\r\nBDAT 1 x\r\nBDAT\t5\r\n",
	// A BDAT line longer than go-smtp's read buffer, its chunk behind it.
	"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<bob@example.com>\r\nBDAT 9000" + strings.Repeat(" ", 5000) + "LAST\r\n" + strings.Repeat("x", 9000),
	"EHLO c\r\nMAIL FROM:<a@b.c> SIZE=99999999999\r\nMAIL FROM:<a@b.c> SIZE=-1\r\n",
	"EHLO c\r\nMAIL FROM:<a@b.c> RET=HDRS ENVID=x+2By\r\nRCPT TO:<alice@example.com> NOTIFY=NEVER,SUCCESS ORCPT=rfc822;a+\r\n",
	"EHLO c\r\nMAIL FROM:<ü@b.c> SMTPUTF8\r\nRCPT TO:<jörg@example.com>\r\nRCPT TO:<x@elsewhere.net>\r\nDATA\r\n\xff\xfe\x00\r\n.\r\n",
	"EHLO c\r\nSTARTTLS\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nVRFY alice\r\nEXPN x\r\nHELP\r\nNOOP\r\n",
	"EHLO c\r\nDATA\r\nRCPT TO:<a@example.com>\r\nMAIL FROM:<a\r\nMAIL FROM:a@b.c\r\n",
	"EHLO a\rb\r\nHELO \x00\r\nEHLO\r\nxx\r\n\r\n\r\n",
	"EHLO c\nMAIL FROM:<a@b.c>\nRCPT TO:<alice@example.com>\nDATA\nbare LF\n.\n\r\n.\r\n",
	"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<full@example.com>\r\nRCPT TO:<down@example.com>\r\nRCPT TO:<bug@example.com>\r\nRCPT TO:<empty@example.com>\r\nDATA\r\n",
	"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
	"EHLO c\r\nMAIL FROM:<" + strings.Repeat("x", 5000) + ">\r\n",
	"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n" + strings.Repeat("y", 70<<10) + "\r\n.\r\n",
	// Past MaxRejectedRcpts with commands pipelined behind the 421, and
	// an SRS recipient from a non-null sender.
	"EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<alice@example.com>\r\n" + strings.Repeat("RCPT TO:<nobody@example.com>\r\n", 22) +
		"DATA\r\nx\r\n.\r\nMAIL FROM:<a@b.c>\r\nNOOP\r\n",
	"LHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<SRS0=h=TT=b.c=a@example.com>\r\nRSET\r\nMAIL FROM:<>\r\nRCPT TO:<srs0=h=TT=b.c=a@example.com>\r\n",
}
