package frontend_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"powermail/frontend/internal/testtls"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/node"
)

// FuzzPOP3Session feeds arbitrary client byte streams to a POP3 server
// over loopback and checks: no panic (it would crash the test binary),
// no hang (the server closes once the input ends), a greeting first, every
// reply line CRLF-terminated, the maildrop lock released afterwards, and
// no message removed unless a QUIT in the TRANSACTION state succeeded.
//
//	go test -run '^$' -fuzz FuzzPOP3Session -fuzztime 30s ./frontend/
func FuzzPOP3Session(f *testing.F) {
	for _, seed := range pop3FuzzSeeds {
		f.Add([]byte(seed))
	}
	store := newPOP3Fake()
	store.addUser(pop3User, "secret")
	tlsCfg, _ := testtls.Config(f)
	cfg := pop3TestConfig()
	cfg.IdleTimeout = 2 * time.Second
	cfg.MaxConnsPerIP = 1000
	cfg.TLS = tlsCfg
	_, addr := pop3Serve(f, store, pop3TestAuth(store, true), cfg, false)

	f.Fuzz(func(t *testing.T, input []byte) {
		store.set(func(s *pop3Fake) { s.inbox = map[string][]node.StoredMessage{} })
		store.add(pop3User, "Subject: a\r\n\r\n.dot\r\nbody\r\n")
		store.add(pop3User, "b\n.\nc")
		before := store.uids(pop3User)

		lines := pop3FuzzExchange(t, addr, input)
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "+OK ") {
			t.Fatalf("no greeting: %q", lines)
		}
		for _, l := range lines {
			if !strings.HasSuffix(l, "\r\n") {
				t.Fatalf("unterminated line %q for input %q", l, input)
			}
		}
		pop3Eventually(t, "lock release", func() bool { return store.holder(pop3User) == "" })
		committed := slices.ContainsFunc(lines, func(l string) bool {
			return strings.HasPrefix(l, "+OK pop.test POP3 server signing off (")
		})
		if after := store.uids(pop3User); !committed && !slices.Equal(after, before) {
			t.Fatalf("messages %v became %v without a successful QUIT; input %q", before, after, input)
		}
	})
}

// pop3FuzzExchange writes input, half-closes, and returns every line
// until the server closes, failing if that takes too long.
func pop3FuzzExchange(t *testing.T, addr string, input []byte) []string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	got := make(chan []string, 1)
	errc := make(chan error, 1)
	go func() {
		var lines []string
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				lines = append(lines, line)
			}
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
					err = nil
				}
				got <- lines
				errc <- err
				return
			}
		}
	}()
	// The server may close early (QUIT, too many errors, STLS): a failed
	// write is not a finding.
	_, _ = conn.Write(input)
	_ = conn.(*net.TCPConn).CloseWrite()
	lines := <-got
	if err := <-errc; err != nil {
		t.Fatalf("server hung or failed: %v for input %q; got %q", err, input, lines)
	}
	// A RETR cut off by the client's half-close leaves no partial line:
	// the server finishes writing before it reads the EOF.
	return lines
}

var pop3FuzzSeeds = []string{
	"CAPA\r\nUSER alice@example.com\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 0\r\nDELE 1\r\nQUIT\r\n",
	"USER alice@example.com\r\nPASS secret\r\nDELE 1\r\nDELE 2\r\nRSET\r\nDELE 2\r\n",
	"AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==\r\nLIST 1\r\nUIDL 2\r\nQUIT\r\n",
	"AUTH PLAIN\r\nAGFsaWNlQGV4YW1wbGUuY29tAHNlY3JldA==\r\nRETR 2\r\nQUIT\r\n",
	"AUTH PLAIN\r\n*\r\nAUTH\r\nAUTH X\r\nAUTH PLAIN =\r\nAUTH PLAIN a b c\r\n",
	"STLS\r\n\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
	"STLS\r\nUSER x\r\n",
	"APOP alice 00000000000000000000000000000000\r\nPASS x\r\nUSER\r\nRETR 1\r\nNOOP\r\n",
	"user alice@example.com\npass secret\nretr 1\ntop 1 99999999999\ntop 1 1\nlist 0\nlist 3\nquit\n",
	"USER alice@example.com\r\nPASS secret\r\nRETR " + strings.Repeat("9", 60) + "\r\nDELE -1\r\nTOP x y\r\nQUIT\r\n",
	strings.Repeat("A", 5000) + "\r\nCAPA\r\n",
	"\x00\xff\r\n\r\n \r\nQUIT extra\r\n",
}
