package frontend

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// pop3Reference is a plain line-by-line model of pop3WriteBody: split on
// LF, end every line with CRLF, stuff leading dots, stop TOP after the
// header section and top body lines.
func pop3Reference(msg string, top int) string {
	var b strings.Builder
	if msg == "" {
		return ".\r\n"
	}
	lines := strings.SplitAfter(msg, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	inBody, n := false, 0
	for _, l := range lines {
		if top >= 0 && inBody && n >= top {
			break
		}
		l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
		if strings.HasPrefix(l, ".") {
			b.WriteString(".")
		}
		b.WriteString(l + "\r\n")
		if inBody {
			n++
		} else if l == "" {
			inBody = true
		}
	}
	b.WriteString(".\r\n")
	return b.String()
}

func pop3Render(t *testing.T, r io.Reader, top, bufSize int) (string, error) {
	t.Helper()
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	err := pop3WriteBody(w, r, top, make([]byte, bufSize))
	if ferr := w.Flush(); ferr != nil {
		t.Fatal(ferr)
	}
	return out.String(), err
}

func TestPOP3WriteBodyMatchesModel(t *testing.T) {
	fixed := []string{
		"", ".", "\n", "\r\n", "a", ".\r\n", "..\r\n", "a\r\n.\r\nb", "\r\n\r\n", "H: v\r\n\r\nb1\r\nb2\r\n",
		"H: v\n\n.b1\nb2", "x\r", "x\r\r\n", "\r", ".\r", "H: v\r\n \r\n\r\nbody\r\n",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab.\r\n")
	for range 300 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		fixed = append(fixed, string(b))
	}
	for _, msg := range fixed {
		for _, top := range []int{-1, 0, 1, 3} {
			want := pop3Reference(msg, top)
			for _, bufSize := range []int{1, 2, 3, 4096} {
				got, err := pop3Render(t, strings.NewReader(msg), top, bufSize)
				if err != nil || got != want {
					t.Fatalf("msg %q top %d buf %d: got %q, %v; want %q", msg, top, bufSize, got, err, want)
				}
			}
			got, err := pop3Render(t, iotest.OneByteReader(strings.NewReader(msg)), top, 4096)
			if err != nil || got != want {
				t.Fatalf("msg %q top %d one-byte reads: got %q, %v; want %q", msg, top, got, err, want)
			}
		}
	}
}

// A read error after part of the message was sent is returned, and no
// terminator follows.
func TestPOP3WriteBodyReadError(t *testing.T) {
	boom := errors.New("checksum mismatch")
	r := io.MultiReader(strings.NewReader("a\r\nb\r\n"), iotest.ErrReader(boom))
	got, err := pop3Render(t, r, -1, 4096)
	if !errors.Is(err, boom) {
		t.Errorf("err %v, want %v", err, boom)
	}
	if strings.HasSuffix(got, ".\r\n") {
		t.Errorf("terminator sent after read error: %q", got)
	}
	// iotest.DataErrReader returns the last data with io.EOF.
	got, err = pop3Render(t, iotest.DataErrReader(strings.NewReader("a\r\n.")), -1, 4096)
	if err != nil || got != "a\r\n..\r\n.\r\n" {
		t.Errorf("data with EOF: %q, %v", got, err)
	}
}

func TestPOP3DecodePlain(t *testing.T) {
	for _, tc := range []struct {
		in                   string
		authz, authc, passwd string
		ok                   bool
	}{
		{"AGFsaWNlAHNlY3JldA==", "", "alice", "secret", true},
		{"eABhAGI=", "x", "a", "b", true},
		{"=", "", "", "", false},
		{"AGFsaWNlAA==", "", "", "", false},       // empty password
		{"AABzZWNyZXQ=", "", "", "", false},       // empty user
		{"YQBiAGMAZA==", "", "", "", false},       // four fields
		{"not base64!", "", "", "", false},        //
		{"AGFsaWNlAHNlY3JldA", "", "", "", false}, // missing padding
	} {
		z, c, p, err := pop3DecodePlain(tc.in)
		if (err == nil) != tc.ok || z != tc.authz || c != tc.authc || p != tc.passwd {
			t.Errorf("%q: got %q %q %q %v", tc.in, z, c, p, err)
		}
	}
}

func TestPOP3Number(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "0": 0, "007": 7, "999999999": 999999999, "": -1, "-1": -1, "+1": -1, "1x": -1, "1000000000": -1, " 1": -1} {
		n, ok := pop3Number(in)
		if (want < 0) == ok || (ok && int64(n) != want) {
			t.Errorf("pop3Number(%q) = %d, %v", in, n, ok)
		}
	}
}

func TestPOP3ConfigDefaults(t *testing.T) {
	cfg := POP3Config{MaxLineLength: 10, IdleTimeout: -1}.withDefaults()
	if cfg.Hostname == "" || cfg.ServerID != cfg.Hostname {
		t.Errorf("Hostname %q ServerID %q", cfg.Hostname, cfg.ServerID)
	}
	if cfg.MaxLineLength != pop3MinLineLength {
		t.Errorf("MaxLineLength %d, want the RFC 2449 floor %d", cfg.MaxLineLength, pop3MinLineLength)
	}
	if cfg.IdleTimeout != DefaultPOP3IdleTimeout || cfg.IdleTimeout < 10*time.Minute {
		t.Errorf("IdleTimeout %v", cfg.IdleTimeout)
	}
	if cfg.PreAuthTimeout != DefaultPOP3PreAuthTimeout {
		t.Errorf("PreAuthTimeout %v", cfg.PreAuthTimeout)
	}
	if cfg.WriteTimeout != DefaultPOP3WriteTimeout || cfg.MaxConnsPerIP != DefaultMaxConnsPerIP ||
		cfg.MaxBadCommands != DefaultPOP3MaxBadCommands || cfg.BackendTimeout != DefaultPOP3BackendTimeout ||
		cfg.AccountCheckInterval != DefaultAccountCheckInterval {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if got := (POP3Config{MaxLineLength: 2000}).withDefaults().MaxLineLength; got != 2000 {
		t.Errorf("explicit MaxLineLength became %d", got)
	}
}
