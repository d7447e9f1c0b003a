package frontend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"powermail/node"
)

// The reply table of DESIGN.md, for directory errors. Temporary wins
// when an error wraps both kinds.
func TestReplyForDirectoryError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		enh  smtp.EnhancedCode
	}{
		{fmt.Errorf("x: %w", node.ErrUnknownRecipient), 550, smtp.EnhancedCode{5, 1, 1}},
		{fmt.Errorf("x: %w", node.ErrNotLocal), 550, smtp.EnhancedCode{5, 7, 1}},
		{fmt.Errorf("x: %w", node.ErrExternalTarget), 451, smtp.EnhancedCode{4, 3, 0}},
		{fmt.Errorf("x: %w", node.ErrOverQuota), 452, smtp.EnhancedCode{4, 2, 2}},
		{fmt.Errorf("x: %w", node.ErrFolderFull), 552, smtp.EnhancedCode{5, 2, 2}},
		{fmt.Errorf("x: %w", node.ErrUnavailable), 451, smtp.EnhancedCode{4, 3, 0}},
		{context.DeadlineExceeded, 451, smtp.EnhancedCode{4, 3, 0}},
		{context.Canceled, 451, smtp.EnhancedCode{4, 3, 0}},
		{errors.New("unexpected"), 451, smtp.EnhancedCode{4, 3, 0}},
		{nil, 451, smtp.EnhancedCode{4, 3, 0}},
		{errors.Join(node.ErrUnknownRecipient, node.ErrUnavailable), 451, smtp.EnhancedCode{4, 3, 0}},
		{errors.Join(node.ErrNotLocal, node.ErrOverQuota), 452, smtp.EnhancedCode{4, 2, 2}},
	} {
		r := replyForDirectoryError(tc.err)
		if r.Code != tc.code || r.EnhancedCode != tc.enh {
			t.Errorf("%v -> %d %v, want %d %v", tc.err, r.Code, r.EnhancedCode, tc.code, tc.enh)
		}
	}
}

// Session methods return nil or *smtp.SMTPError, never a plain error,
// whatever the backend returns.
func TestNoPlainErrorReachesGoSMTP(t *testing.T) {
	f := newFakeDeliverer()
	srv, err := NewSMTPServer(testConfig(), f)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	s := &session{srv: srv, remote: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1)}, ctx: context.Background(),
		cancel: func() {}, log: srv.log}
	s.tx = &txn{id: "T", boxIndex: map[string]struct{}{}}
	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			return
		}
		var se *smtp.SMTPError
		if !errors.As(err, &se) || error(se) != err {
			t.Errorf("%s returned plain error %T %v", what, err, err)
		}
	}
	for _, rcpt := range []string{"alice@example.com", "nobody@example.com", "x@elsewhere.net", "ext@example.com",
		"full@example.com", "down@example.com", "bug@example.com", "empty@example.com", "bad@@x", "ü@example.com"} {
		check("Rcpt "+rcpt, s.Rcpt(rcpt, &smtp.RcptOptions{}))
	}
	for _, derr := range []error{nil, errors.New("plain"), node.ErrUnavailable} {
		f.set(func(f *fakeDeliverer) { f.deliverErr = derr })
		check(fmt.Sprintf("Data with Deliver error %v", derr), s.Data(strings.NewReader("x\r\n")))
		check("Data with failing reader", s.Data(errReader{errors.New("conn reset")}))
	}
	s.tx = nil
	check("Data without transaction", s.Data(strings.NewReader("x")))
	check("Rcpt without transaction", s.Rcpt("alice@example.com", nil))
}

func TestWithProtocol(t *testing.T) {
	for _, tc := range []struct {
		lmtp, tls, utf8, auth bool
		want                  string
	}{
		{false, false, false, false, "ESMTP"},
		{false, true, false, false, "ESMTPS"},
		{false, false, true, false, "UTF8SMTP"},
		{false, true, true, false, "UTF8SMTPS"},
		{true, false, false, false, "LMTP"},
		{true, true, false, false, "LMTPS"},
		{true, true, true, false, "UTF8LMTPS"},
		{false, true, false, true, "ESMTPSA"}, // RFC 3848
		{false, false, false, true, "ESMTPA"},
		{false, true, true, true, "UTF8SMTPSA"},
	} {
		if got := withProtocol(tc.lmtp, tc.tls, tc.utf8, tc.auth); got != tc.want {
			t.Errorf("withProtocol(%v,%v,%v,%v) = %q, want %q", tc.lmtp, tc.tls, tc.utf8, tc.auth, got, tc.want)
		}
	}
}

// Client-supplied text cannot break out of the trace header lines.
func TestTraceHeadersSanitised(t *testing.T) {
	for _, tc := range []struct {
		helo   string
		remote net.Addr
		from   string
		want   string
	}{
		{"mail.example.net", &net.TCPAddr{IP: net.ParseIP("2001:db8::1")}, "a@b.c", "from mail.example.net ([IPv6:2001:db8::1])"},
		{"evil\r\nX-Injected: 1", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7)}, "a@b.c", "from [192.0.2.7] (helo=evil??X-Injected: 1)"},
		{"[192.0.2.7]", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7)}, "x\r\ny@b.c", "from [192.0.2.7] ([192.0.2.7])"},
		{"mx.test", &net.UnixAddr{Name: "@", Net: "unix"}, "", "from mx.test\r\n"},
		{"b(a)d\\", &net.UnixAddr{Name: "@", Net: "unix"}, "", "from unknown (helo=b?a?d?)"},
	} {
		h := traceHeaders(traceInfo{from: tc.from, helo: tc.helo, remote: tc.remote, by: "mx.test",
			protocol: "ESMTP", id: "ID", rcpts: []string{"r\r\n@x"}, date: testDate})
		if !strings.Contains(h, tc.want) {
			t.Errorf("helo %q: header lacks %q:\n%s", tc.helo, tc.want, h)
		}
		for i, line := range strings.Split(strings.TrimSuffix(h, "\r\n"), "\r\n") {
			if strings.ContainsAny(line, "\r\n") || (i > 1 && line[0] != '\t') {
				t.Errorf("helo %q: bad header line %q in\n%q", tc.helo, line, h)
			}
		}
	}
}

var testDate = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// A quoted local part, which go-smtp hands over unquoted, is quoted again
// in Return-Path and in Received's for clause (RFC 5321 §4.1.2, §4.4).
func TestTraceHeadersQuoteLocalParts(t *testing.T) {
	h := traceHeaders(traceInfo{from: `john "j" doe@far.org`, helo: "mx.test", by: "mx.test",
		protocol: "ESMTP", id: "ID", rcpts: []string{"a b@example.com"}, date: testDate})
	for _, want := range []string{"Return-Path: <\"john \\\"j\\\" doe\"@far.org>\r\n", "for <\"a b\"@example.com>;"} {
		if !strings.Contains(h, want) {
			t.Errorf("trace headers lack %q:\n%s", want, h)
		}
	}
}

// Address literals are checked against RFC 5321 §4.1.3, in a recipient
// and in a HELO name (which otherwise goes into Received as is).
func TestAddressLiteralSyntax(t *testing.T) {
	for _, tc := range []struct {
		domain string
		ok     bool
	}{
		{"[192.0.2.1]", true}, {"[192.000.002.001]", true}, {"[IPv6:2001:db8::1]", true},
		{"[ipv6:::1]", true}, {"[x400:c=us;a=b]", true},
		{"[]", false}, {"[192.0.2]", false}, {"[192.0.2.256]", false}, {"[1.2.3.4.5]", false},
		{"[IPv6:192.0.2.1]", false}, {"[IPv6:fe80::1%eth0]", false}, {"[IPv6:]", false},
		{"[junk]", false}, {"[-x:y]", false}, {"[tag:a b]", false}, {"[tag:a\\b]", false},
	} {
		if got := checkDomain(tc.domain); (got == "") != tc.ok {
			t.Errorf("checkDomain(%q) = %q, want ok %v", tc.domain, got, tc.ok)
		}
	}
	h := traceHeaders(traceInfo{helo: "[not an address]", remote: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7)},
		by: "mx.test", protocol: "ESMTP", id: "ID", date: testDate})
	if want := "from [192.0.2.7] (helo=[not an address])"; !strings.Contains(h, want) {
		t.Errorf("trace header lacks %q:\n%s", want, h)
	}
}

// A quoted path too long for a trace field is cut inside its local part
// and still closes its quotes: cut at maxTraceText, `<"a a a ...>` left
// the quoted string open over the closing bracket, and a cut after a
// quoting backslash escaped whatever came next.
func TestTraceHeadersCutAQuotedPathWhole(t *testing.T) {
	for _, local := range []string{strings.Repeat("a ", 200), strings.Repeat(`\`, 200), strings.Repeat(`x"`, 200)} {
		h := traceHeaders(traceInfo{from: local + "@far.org", helo: "mx.test", by: "mx.test",
			protocol: "ESMTP", id: "ID", rcpts: []string{local + "@example.com"}, date: testDate})
		rp := strings.TrimSuffix(strings.SplitN(h, "\r\n", 2)[0], ">")
		rp = strings.TrimPrefix(rp, "Return-Path: <")
		_, fr, _ := strings.Cut(h, "for <")
		fr, _, _ = strings.Cut(fr, ">;")
		for _, p := range []string{rp, fr} {
			if !closedQuotes(p) || !strings.HasPrefix(p, `"`) {
				t.Errorf("path %q leaves its quoted local part open", p)
			}
		}
	}
}

// closedQuotes reports whether every quoted string in s ends in s.
func closedQuotes(s string) bool {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch {
		case quoted && s[i] == '\\':
			if i++; i == len(s) {
				return false
			}
		case s[i] == '"':
			quoted = !quoted
		}
	}
	return !quoted
}
