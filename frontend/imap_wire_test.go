package frontend

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// runInput feeds in to an imapInput in chunks of the given sizes (cycled)
// and returns what the library would read, with ID and STARTTLS lines
// replaced by markers.
func runInput(in []byte, sizes []int) string {
	var st imapInput
	var out []byte
	for i := 0; len(in) > 0; i++ {
		k := min(max(sizes[i%len(sizes)], 1), len(in))
		b := in[:k]
		in = in[k:]
		for len(b) > 0 {
			var line []byte
			b, out, line = st.next(b, out)
			if line == nil {
				continue
			}
			if _, name, _, ok := imapCommand(line); ok && literalAtEnd(line) < 0 && (name == "ID" || name == "STARTTLS") {
				out = append(out, "<"+name+">"...)
				continue
			}
			out = append(out, line...)
		}
	}
	return string(out)
}

func TestIMAPInput(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a ID NIL\r\nb NOOP\r\n", "<ID>b NOOP\r\n"},
		{"a id (\"name\" \"x\")\r\n", "<ID>"},
		{"a STARTTLS\r\n", "<STARTTLS>"},
		// Literal data and the rest of the command after it are passed on.
		{"a APPEND INBOX {11}\r\nb ID NIL\r\n\r\nc ID NIL\r\n", "a APPEND INBOX {11}\r\nb ID NIL\r\n\r\n<ID>"},
		{"a APPEND X {3+}\r\nabc\r\nb ID NIL\r\n", "a APPEND X {3+}\r\nabc\r\n<ID>"},
		// A second message (MULTIAPPEND) is read past, the library
		// given the command's end instead (imap_appendend.go).
		{"a APPEND X {3+}\r\nabc {4+}\r\nb ID\r\n\r\nc ID NIL\r\n", "a APPEND X {3+}\r\nabc\r\n\r\n<ID>"},
		{"a APPEND X UTF8 (~{3+}\r\nabc) {4}\r\nc ID NIL\r\n", "a APPEND X UTF8 (~{3+}\r\nabc)\r\n<ID>"},
		{"a APPEND X UTF8 (~{3+}\r\nabc) \r\nc ID NIL\r\n", "a APPEND X UTF8 (~{3+}\r\nabc) \r\n<ID>"},
		{"a APPEND X ~{3}\r\n\x00\r\n\r\n", "a APPEND X ~{3}\r\n\x00\r\n\r\n"},
		// An ID that announces a literal is the library's to refuse.
		{"a ID (\"name\" {3}\r\nabc)\r\n", "a ID (\"name\" {3}\r\nabc)\r\n"},
		// IDLE's DONE and AUTHENTICATE's responses are not commands.
		{"DONE\r\nAGFsaWNl\r\n*\r\n", "DONE\r\nAGFsaWNl\r\n*\r\n"},
		{"x {2}\r\n", "x {2}\r\n"},
		// A lone LF ends a line, and a literal's announcement, as CRLF does.
		{"a APPEND X {9}\nb ID NIL\n\nc ID NIL\n", "a APPEND X {9}\nb ID NIL\n\n<ID>"},
	} {
		for _, sizes := range [][]int{{1 << 20}, {1}, {3, 7}} {
			if got := runInput([]byte(tc.in), sizes); got != tc.want {
				t.Errorf("%q in chunks %v: got %q, want %q", tc.in, sizes, got, tc.want)
			}
		}
	}
	long := "a ID " + string(bytes.Repeat([]byte("x"), imapHoldLine)) + "\r\nb ID NIL\r\n"
	if got := runInput([]byte(long), []int{1000}); got != long[:len(long)-len("b ID NIL\r\n")]+"<ID>" {
		t.Errorf("an overlong line is not passed through unchanged")
	}
}

func TestIMAPRewriteResponse(t *testing.T) {
	pending := []imapLocalReply{imapIDReply("a1", true), imapIDReply("a2", false), imapIDReply("a3", true),
		{tag: "q1", lines: "* QUOTAROOT INBOX \"\"\r\n", status: "OK GETQUOTAROOT completed"}}
	for _, tc := range []struct{ in, want string }{
		{"* OK [CAPABILITY IMAP4rev1 IMAP4rev2] hi\r\n", "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ID QUOTA QUOTA=RES-STORAGE] hi\r\n"},
		{"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n", "* CAPABILITY IMAP4rev1 AUTH=PLAIN ID QUOTA QUOTA=RES-STORAGE\r\n"},
		{"t7 OK [CAPABILITY IMAP4rev1] Logged in\r\n", "t7 OK [CAPABILITY IMAP4rev1 ID QUOTA QUOTA=RES-STORAGE] Logged in\r\n"},
		{"* CAPABILITY IMAP4rev1 ID\r\n", ""},
		{"* 3 EXISTS\r\n", ""},
		{"a1 OK NOOP completed\r\n", "* ID " + imapServerID + "\r\na1 OK ID completed\r\n"},
		{"a2 OK NOOP completed\r\n", "a2 BAD Invalid ID arguments\r\n"},
		{"a3 NO [UNAVAILABLE] try again\r\n", ""},
		{"a3 OK NOOP completed\r\n", ""}, // no longer pending
		{"q1 OK NOOP completed\r\n", "* QUOTAROOT INBOX \"\"\r\nq1 OK GETQUOTAROOT completed\r\n"},
		{"* OK [CAPABILITY IMAP4rev1 without end\r\n", ""},
		{"s4 NO [BADCHARSET] Only US-ASCII and UTF-8 are supported SEARCH charsets\r\n",
			"s4 NO [BADCHARSET (US-ASCII UTF-8)] Only US-ASCII and UTF-8 are supported SEARCH charsets\r\n"},
		{"s5 NO [BADCHARSET (X)] already a list\r\n", ""},
		{"s6 OK [BADCHARSET] not a refusal\r\n", ""},
	} {
		got := string(rewriteResponse([]byte(tc.in), &pending))
		if got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestValidIDArgs(t *testing.T) {
	for in, want := range map[string]bool{
		`NIL`: true, `nil`: true, `("name" "x")`: true, `("a" "b" "c" "d")`: true,
		`("name" "a \" quote")`: true, `()`: true,
		// A value is an nstring (RFC 2971 section 4): NIL for a field
		// the client has no value for.
		`("name" "x" "os" NIL)`: true, `("os-version" nil "name" "x")`: true,
		``: false, `("name")`: false, `("name" "x"`: false, `"name" "x"`: false, `("a" "b)`: false,
		`(NIL "x")`: false, `("name" NILS)`: false, `("name" x)`: false, `("name" NIL "os")`: false,
	} {
		if got := validIDArgs([]byte(in)); got != want {
			t.Errorf("validIDArgs(%q) = %v, want %v", in, got, want)
		}
	}
}

// FuzzIMAPInput: how the client's octets are split into reads never
// changes what the library gets.
func FuzzIMAPInput(f *testing.F) {
	f.Add([]byte("a ID NIL\r\nb APPEND X {5}\r\nc ID \r\n\r\nd STARTTLS\r\n"), uint8(3), uint8(1))
	f.Add([]byte("a LOGIN {1+}\r\nu {2}\r\npw\r\nDONE\r\n"), uint8(2), uint8(5))
	f.Add([]byte("a CREATE {5000}\r\nb RENAME {1}\r\nx {5000+}\r\n"+strings.Repeat("y", 5000)+"\r\n"), uint8(4), uint8(9))
	f.Add([]byte("a XFOO "+strings.Repeat("y", imapHoldLine)+" {12+}\r\nx DELETE Archive\r\n"), uint8(200), uint8(3))
	f.Add([]byte("a APPEND X UTF8 (~{3+}\r\nabc) {2+}\r\nhi\r\nb APPEND X {0}\r\n x\r\nc ID NIL\r\n"), uint8(1), uint8(7))
	f.Add([]byte("a LOGIN {1+}\r\nu "+strings.Repeat("y", imapCommandMax)+" z CREATE X\r\n"), uint8(250), uint8(13))
	f.Add([]byte("a XFOO {1+}\r\nx {"+strings.Repeat("0", 40)+"18+}\r\nx DELETE Archive\r\n\r\nb ID NIL\r\n"), uint8(30), uint8(2))
	// Leading zeros that take a line's end past 32 octets in one read but
	// not in several (the window of imapAnnouncementStart).
	f.Add([]byte("{0}\n0{"+strings.Repeat("0", 33)), uint8(30), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, s1, s2 uint8) {
		if len(in) > 1<<16 {
			return
		}
		whole := runInput(in, []int{len(in)})
		if got := runInput(in, []int{int(s1), int(s2)}); got != whole {
			t.Fatalf("chunks %d,%d: %q, whole: %q", s1, s2, got, whole)
		}
	})
}

// captureConn records what is written to it.
type captureConn struct {
	net.Conn
	out bytes.Buffer
}

func (c *captureConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }
func (c *captureConn) Close() error                     { return nil }

// runOutput writes the library's octets through an imapConn in chunks of
// the given sizes (cycled) and returns what reached the client.
func runOutput(in []byte, sizes []int, pending []imapLocalReply) string {
	cc := &captureConn{}
	c := &imapConn{Conn: cc, held: -1, pending: slices.Clone(pending), srv: &IMAPServer{cfg: IMAPConfig{WriteTimeout: time.Minute}},
		saveOnly: map[string]bool{"s1": true}}
	for i := 0; len(in) > 0; i++ {
		k := min(max(sizes[i%len(sizes)], 1), len(in))
		if _, err := c.Write(in[:k]); err != nil {
			panic(err)
		}
		in = in[k:]
		if i%3 == 0 {
			c.flush() // the write-delay timer
		}
	}
	c.Close()
	return cc.out.String()
}

// The ESEARCH of a SEARCH RETURN (SAVE) is dropped, short or longer than
// a held line, and only until that search's tagged response.
func TestIMAPConnOutputDropsSaveOnlyESearch(t *testing.T) {
	long := "* ESEARCH (TAG \"s1\") UID ALL " + strings.Repeat("1,", imapHoldLine) + "3\r\n"
	in := "* ESEARCH (TAG \"s1\") ALL 1:3\r\n" + long + "* ESEARCH (TAG \"s2\") ALL 1\r\n* 4 EXISTS\r\ns1 OK done\r\n" +
		"* ESEARCH (TAG \"s1\") ALL 2\r\n"
	want := "* ESEARCH (TAG \"s2\") ALL 1\r\n* 4 EXISTS\r\ns1 OK done\r\n* ESEARCH (TAG \"s1\") ALL 2\r\n"
	for _, sizes := range [][]int{{1 << 20}, {1}, {5, 11}, {imapWriteBuffer + 1}} {
		if got := runOutput([]byte(in), sizes, nil); got != want {
			t.Errorf("chunks %v:\n got %q\nwant %q", sizes, got, want)
		}
	}
}

func TestImapSearchSaveOnly(t *testing.T) {
	for line, want := range map[string]bool{
		"a SEARCH RETURN (SAVE) FLAGGED":       true,
		"a uid search return (save) ALL":       true,
		"a SEARCH RETURN (SAVE ALL) FLAGGED":   false,
		"a SEARCH RETURN (MIN SAVE) FLAGGED":   false,
		"a SEARCH RETURN () FLAGGED":           false,
		"a SEARCH FLAGGED":                     false,
		"a UID FETCH 1 (FLAGS)":                false,
		"a FETCH RETURN (SAVE)":                false,
		"a SEARCH RETURN (SAVE":                false,
		"a SEARCH CHARSET UTF-8 RETURN (SAVE)": false,
	} {
		_, name, args, _ := imapCommand([]byte(line + "\r\n"))
		if got := imapSearchSaveOnly(name, args); got != want {
			t.Errorf("%q: %v, want %v", line, got, want)
		}
	}
}

func TestIMAPConnOutput(t *testing.T) {
	body := "* CAPABILITY IMAP4rev1\r\na1 OK fake\r\n"
	in := "* OK [CAPABILITY IMAP4rev1] hi\r\n" +
		fmt.Sprintf("* 1 FETCH (BODY[] {%d}\r\n%s)\r\n", len(body), body) +
		"* " + strings.Repeat("x", imapHoldLine) + " {3}\r\n* C)\r\n" +
		"a1 OK NOOP completed\r\n"
	want := "* OK [CAPABILITY IMAP4rev1 ID QUOTA QUOTA=RES-STORAGE] hi\r\n" +
		fmt.Sprintf("* 1 FETCH (BODY[] {%d}\r\n%s)\r\n", len(body), body) +
		"* " + strings.Repeat("x", imapHoldLine) + " {3}\r\n* C)\r\n" +
		"* ID " + imapServerID + "\r\na1 OK ID completed\r\n"
	for _, sizes := range [][]int{{1 << 20}, {1}, {5, 11}, {imapWriteBuffer + 1}} {
		if got := runOutput([]byte(in), sizes, []imapLocalReply{imapIDReply("a1", true)}); got != want {
			t.Errorf("chunks %v:\n got %q\nwant %q", sizes, got, want)
		}
	}
}

// FuzzIMAPConnOutput: how the library's writes are split never changes
// what the client gets.
func FuzzIMAPConnOutput(f *testing.F) {
	f.Add([]byte("* OK [CAPABILITY IMAP4rev1] x\r\n* 1 FETCH (BODY[] {4}\r\na1 O)\r\na1 OK done\r\n"), uint8(3), uint8(1))
	f.Add([]byte("* ESEARCH (TAG \"s1\") ALL 1:3\r\n* ESEARCH (TAG \"s2\") ALL 1\r\ns1 OK done\r\n* ESEARCH (TAG \"s1\") ALL 2\r\n"), uint8(7), uint8(2))
	f.Add([]byte("* ESEARCH (TAG \"s1\") UID ALL "+strings.Repeat("1,", imapHoldLine)+"3\r\ns1 OK done\r\n"), uint8(200), uint8(9))
	// Leading zeros that take a line's end past 32 octets in one read but
	// not in several (the window of imapAnnouncementStart).
	f.Add([]byte("{0}\n0{"+strings.Repeat("0", 33)), uint8(30), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, s1, s2 uint8) {
		if len(in) > 1<<16 {
			return
		}
		pending := []imapLocalReply{imapIDReply("a1", true), imapIDReply("a2", false)}
		whole := runOutput(in, []int{len(in)}, pending)
		if got := runOutput(in, []int{int(s1), int(s2)}, pending); got != whole {
			t.Fatalf("chunks %d,%d: %q, whole: %q", s1, s2, got, whole)
		}
	})
}

// A literal's length is digits only (RFC 9051 §9: number); anything else
// ends the line as ordinary text; digits past int64 are the largest
// length, which every limit refuses.
func TestLiteralAtEnd(t *testing.T) {
	for line, want := range map[string]int64{
		"a APPEND x {12}\r\n":  12,
		"a APPEND x {12+}\r\n": 12,
		"a APPEND x ~{0}\r\n":  0,
		"a APPEND x {007}":     7,
		"a APPEND x {+5}\r\n":  -1,
		"a APPEND x {-5}\r\n":  -1,
		"a APPEND x {}\r\n":    -1,
		"a APPEND x {+}\r\n":   -1,
		"a APPEND x {1 2}\r\n": -1,
		"a NOOP\r\n":           -1,
		// Line ends as go-imap reads them (imapTrimEOL).
		"a APPEND x {12}\n":                     12,
		"a APPEND x {12+} \r\n":                 12,
		"a APPEND x {12} \n":                    12,
		"a APPEND x {12}  \n":                   -1,
		"a APPEND x {99999999999999999999}\r\n": math.MaxInt64,
	} {
		if got := literalAtEnd([]byte(line)); got != want {
			t.Errorf("literalAtEnd(%q) = %d, want %d", line, got, want)
		}
	}
}
