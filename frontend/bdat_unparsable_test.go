package frontend

import (
	"fmt"
	"strings"
	"testing"

	"powermail/frontend/internal/testtls"
	"powermail/node/nodetest"
)

// smuggledChunk is a chunk whose lines would run a transaction of their
// own if they were read as commands.
const smuggledChunk = "RSET\r\nMAIL FROM:<ceo@bank.test>\r\nRCPT TO:<alice@example.com>\r\n" +
	"DATA\r\nFrom: ceo@bank.test\r\n\r\nPay now.\r\n.\r\nNOOP\r\n"

// A BDAT whose chunk size go-smtp cannot parse has no known end (RFC
// 3030 §2), so the chunk the client pipelined behind it must not be
// read as commands: 501 5.5.4 and the connection closes, with no reply
// to the chunk's lines and nothing delivered. go-smtp alone answered
// 501 and ran them.
func TestBDATUnparsableClosesConnection(t *testing.T) {
	for _, line := range []string{
		"BDAT 10 FOO",
		"BDAT 4294967296",
		"BDAT -1",
		"BDAT +10",
		"BDAT 0x10",
		"BDAT",
		"BDAT ",
		"BDAT 5 LAST extra",
		"bdat 10 foo",
		"BDAT\t10",
		"BDAT 10 LAST\x00",
	} {
		for _, inChunks := range []bool{false, true} {
			t.Run(fmt.Sprintf("%q/after a chunk %v", line, inChunks), func(t *testing.T) {
				f := newFakeDeliverer()
				_, addr := startServer(t, testConfig(), f)
				c := dial(t, addr)
				c.ehlo()
				head := "MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\n"
				want := []int{250, 250}
				if inChunks {
					head += "BDAT 5\r\nhello"
					want = append(want, 250)
				}
				c.write(head + line + "\r\n" + smuggledChunk)
				c.expectCodes(want...)
				checkReply(t, line, c.read(), 501, "5.5.4")
				if rest := c.expectClosed(); len(rest) != 0 {
					t.Errorf("replies after the 501: %q", rest)
				}
				noneStored(t, f)
			})
		}
	}
}

// The same over LMTP, before any greeting, and after a DATA refused for
// want of a recipient (the lines behind it are commands).
func TestBDATUnparsableLMTPAndOutsideTransactions(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		want       []int
		lmtp       bool
	}{
		{"lmtp", "LHLO client.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\n", []int{250, 250, 250}, true},
		{"before EHLO", "", nil, false},
		{"after a refused DATA", "EHLO client.test\r\nDATA\r\n", []int{250, 502}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.lmtp {
				cfg = lmtpConfig()
			}
			f := newFakeDeliverer()
			_, addr := startServer(t, cfg, f)
			c := dial(t, addr)
			c.write(tc.head + "BDAT 99 FOO\r\n" + strings.ReplaceAll(smuggledChunk, "RSET", "LHLO x\r\nEHLO x"))
			c.expectCodes(tc.want...)
			checkReply(t, "BDAT 99 FOO", c.read(), 501, "5.5.4")
			if rest := c.expectClosed(); len(rest) != 0 {
				t.Errorf("replies after the 501: %q", rest)
			}
			noneStored(t, f)
		})
	}
}

// BDAT lines go-smtp parses stay as they were: the verb in any case,
// spaces and tabs between the arguments, LAST in any case, trailing
// blanks, leading zeros, BDAT 0 LAST; and lines that look like an
// unparsable BDAT inside a DATA body, a BDAT chunk or an AUTH exchange
// are content. Each message is delivered whole and the session goes on.
func TestBDATLinesGoSMTPAcceptsStayOpen(t *testing.T) {
	f := newFakeDeliverer()
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	for _, tc := range []struct {
		chunks string
		n      int // BDAT commands
		want   string
	}{
		{"bdat 5 last\r\nhello", 1, "hello\r\n"},
		{"BDAT  5   LAST\r\nhello", 1, "hello\r\n"},
		{"BDAT 5\tLAST\r\nhello", 1, "hello\r\n"},
		{"BDAT 5 LAST \t\r\nhello", 1, "hello\r\n"},
		{"BdAt 005 lAsT\nhello", 1, "hello\r\n"},
		{"BDAT 5 LAST\r\r\nhello", 1, "hello\r\n"},
		{"BDAT 13\r\nBDAT 10 FOO\r\nBDAT 0 LAST\r\n", 2, "BDAT 10 FOO\r\n"},
		{"BDAT 0 LAST\r\n", 1, ""},
	} {
		c.write("MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\n" + tc.chunks + "NOOP\r\n")
		for i := range tc.n + 3 {
			if r := c.read(); r.code != 250 {
				t.Fatalf("%q: reply %d: %v", tc.chunks, i, r)
			}
		}
		if _, got := splitTrace(t, f.lastDelivery(t).body); got != tc.want {
			t.Errorf("%q: delivered %q, want %q", tc.chunks, got, tc.want)
		}
	}
	// A DATA body: a dot-stuffed line, and a dot with a bare LF, which
	// does not end it (go-smtp's reader ends only at CRLF "." CRLF).
	c.write("MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
	c.expectCodes(250, 250, 354)
	c.write("BDAT 10 FOO\r\n..\r\n.\nBDAT -1\r\n.\r\nNOOP\r\n")
	c.expectCodes(250, 250)
	if _, got := splitTrace(t, f.lastDelivery(t).body); got != "BDAT 10 FOO\r\n.\r\n\r\nBDAT -1\r\n" {
		t.Errorf("DATA delivered %q", got)
	}
	c.expect("QUIT", 221, "")
}

// A valid BDAT session is unchanged under STARTTLS, where the gate has
// ended (DESIGN.md: Not yet).
func TestBDATAfterStartTLS(t *testing.T) {
	cfg := testConfig()
	serverTLS, roots := testtls.Config(t)
	cfg.TLS = serverTLS
	f := newFakeDeliverer()
	_, addr := startServer(t, cfg, f)
	c := dial(t, addr)
	c.ehlo()
	c.expect("STARTTLS", 220, "")
	c.upgradeTLS(roots)
	c.ehlo()
	c.write("MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\nBDAT 5\r\nhelloBDAT 0 LAST\r\nNOOP\r\n")
	c.expectCodes(250, 250, 250, 250, 250)
	if _, got := splitTrace(t, f.lastDelivery(t).body); got != "hello\r\n" {
		t.Errorf("delivered %q", got)
	}
}

// noneStored fails if f was given a message read to its end: a message
// begun in chunks before the connection closed reads ErrDataReset.
func noneStored(t *testing.T, f *fakeDeliverer) {
	t.Helper()
	for _, d := range f.allDeliveries() {
		if d.readErr == nil {
			t.Errorf("delivered %q", d.body)
		}
	}
}

// parseBDAT reads a BDAT line as go-smtp v0.26.0 does (parseCmd, then
// handleBdat's strings.Fields and strconv.ParseUint(s, 10, 32)).
func TestBDATLineParse(t *testing.T) {
	for _, tc := range []struct {
		line       string
		size       int64
		ok, isBDAT bool
	}{
		{"BDAT 10\r\n", 10, true, true},
		{"bdat 10 last\r\n", 10, true, true},
		{"BDAT  10\t LAST \r\n", 10, true, true},
		{"BDAT 4294967295 LAST\n", 4294967295, true, true},
		{"BDAT 0 LAST\r\r\n", 0, true, true},
		{"BDAT 4294967296\r\n", 0, false, true},
		{"BDAT 10 FOO\r\n", 0, false, true},
		{"BDAT 10 LAST x\r\n", 0, false, true},
		{"BDAT\r\n", 0, false, true},
		{"BDAT \r\n", 0, false, true},
		{"BDAT\t10\r\n", 0, false, true},
		{"BDAT 1_0\r\n", 0, false, true},
		{"BDATX 10\r\n", 0, false, false},
		{"BDA\r\n", 0, false, false},
		{"DATA\r\n", 0, false, false},
		{"NOOP BDAT 5 FOO\r\n", 0, false, false},
	} {
		size, ok, isBDAT := parseBDAT([]byte(tc.line))
		if size != tc.size || ok != tc.ok || isBDAT != tc.isBDAT {
			t.Errorf("%q: %d %v %v, want %d %v %v", tc.line, size, ok, isBDAT, tc.size, tc.ok, tc.isBDAT)
		}
	}
}

// An AUTH response is no command, even when it reads "BDAT" (valid
// base64): the exchange fails as any wrong login does and the session
// goes on, to a login and a BDAT message.
func TestBDATLineAsAuthResponse(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw-alice", "alice@example.com")
	addr := startSubmission(t, c.Nodes[0], c.Nodes[0])
	cl := dial(t, addr)
	cl.ehlo()
	cl.expect("AUTH LOGIN", 334, "")
	if r := cl.cmd("BDAT"); r.code != 334 {
		t.Fatalf("user name BDAT: %v", r)
	}
	cl.expect("BDAT", 535, "5.7.8")
	cl.expect("NOOP", 250, "")
	cl.expect("AUTH PLAIN "+b64("\x00alice@example.com\x00pw-alice"), 235, "2.0.0")
	body := "From: alice@example.com\r\nSubject: x\r\n\r\nhi\r\n"
	cl.write(fmt.Sprintf("MAIL FROM:<alice@example.com>\r\nRCPT TO:<alice@example.com>\r\nBDAT %d LAST\r\n%s", len(body), body))
	cl.expectCodes(250, 250, 250)
}
