package frontend_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"
)

// readUntilTag reads response lines up to and including the tagged one.
func readUntilTag(t *testing.T, br *bufio.Reader, tag string) []string {
	t.Helper()
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading to %s after %q: %v", tag, lines, err)
		}
		lines = append(lines, l)
		if strings.HasPrefix(l, tag+" ") {
			return lines
		}
	}
}

// TestIMAPLoginLiteralRefusedWithoutTLS: where the server refuses
// plaintext passwords (LOGINDISABLED, RFC 9051 §6.2.3), a LOGIN that
// sends its user name or password as a synchronizing literal is refused
// (NO [PRIVACYREQUIRED]) instead of being answered "+", which would ask
// the client to send the password in the clear only to refuse it then.
// A non-synchronizing literal is read past, not run as commands; and
// under TLS the same LOGIN is asked for its literals and logs in.
func TestIMAPLoginLiteralRefusedWithoutTLS(t *testing.T) {
	store, user := imapMemStore(t)
	plain, implicit, clientTLS := startIMAPTLS(t, store)
	raw, br, l := dialIMAPGreeting(t, plain)
	if !strings.Contains(l, "LOGINDISABLED") {
		t.Fatalf("greeting %q: want LOGINDISABLED", l)
	}
	for i, line := range []string{
		fmt.Sprintf("{%d}\r\n", len(user)),                  // the user name as a literal
		fmt.Sprintf("%q {%d}\r\n", user, len(imapPassword)), // the password as a literal
	} {
		tag := fmt.Sprintf("p%d", i)
		fmt.Fprintf(raw, "%s LOGIN %s", tag, line)
		l, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(l, tag+" NO [PRIVACYREQUIRED]") {
			t.Fatalf("LOGIN %q in plaintext: %q (%v), want %s NO [PRIVACYREQUIRED] and no \"+\"", line, l, err, tag)
		}
	}
	// Non-synchronizing literals: sent anyway, dropped, never commands.
	fmt.Fprintf(raw, "n1 LOGIN {%d+}\r\n%s {%d+}\r\nn2 DELETE x\r\nn3 NOOP\r\n", len(user), user, len("n2 DELETE x"))
	lines := readUntilTag(t, br, "n3")
	all := strings.Join(lines, "")
	if !strings.HasPrefix(lines[0], "n1 NO [PRIVACYREQUIRED]") || strings.Contains(all, "n2 ") || !strings.Contains(all, "n3 OK") {
		t.Errorf("non-synchronizing LOGIN in plaintext: got %q, want n1 NO [PRIVACYREQUIRED], nothing for n2, n3 OK", all)
	}

	tc, err := tls.Dial("tcp", implicit, clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	tr := bufio.NewReader(tc)
	tr.ReadString('\n')
	fmt.Fprintf(tc, "t1 LOGIN {%d}\r\n", len(user))
	if l, _ := tr.ReadString('\n'); !strings.HasPrefix(l, "+") {
		t.Fatalf("LOGIN literal under TLS: %q, want +", l)
	}
	fmt.Fprintf(tc, "%s {%d}\r\n", user, len(imapPassword))
	if l, _ := tr.ReadString('\n'); !strings.HasPrefix(l, "+") {
		t.Fatalf("LOGIN password literal under TLS: %q, want +", l)
	}
	fmt.Fprintf(tc, "%s\r\n", imapPassword)
	if l := readUntilTag(t, tr, "t1"); !strings.HasPrefix(l[len(l)-1], "t1 OK") {
		t.Errorf("LOGIN with literals under TLS: %q", l)
	}
}
