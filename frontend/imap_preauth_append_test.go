package frontend_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"powermail/frontend"
	"powermail/node/nodetest"
)

// TestIMAPAppendBeforeLoginRefusedBeforeItsMessage: APPEND is a command
// of the authenticated state (RFC 9051 §6.3.12), so before login its
// message literal is refused instead of "+" (RFC 9051 §7.5): a client
// nobody knows is not asked to upload up to the append limit, only for
// it to be dropped. A non-synchronizing one is read past, never run as
// commands; and an APPEND pipelined behind the LOGIN that makes it
// valid is taken.
func TestIMAPAppendBeforeLoginRefusedBeforeItsMessage(t *testing.T) {
	c := nodetest.Start(t, 1)
	addr := startIMAP(t, c.Nodes[0], frontend.IMAPConfig{}, true)
	user := imapNewAddr(t)
	c.AddMailboxes(imapPassword, user)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	br.ReadString('\n')

	fmt.Fprint(conn, "a1 APPEND INBOX {1000}\r\n")
	if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "a1 NO ") {
		t.Fatalf("APPEND before login: %q (%v), want a1 NO and no \"+\"", l, err)
	}
	fmt.Fprintf(conn, "a2 APPEND INBOX {%d+}\r\na3 DELETE x\r\na4 NOOP\r\n", len("a3 DELETE x"))
	all := strings.Join(readUntilTag(t, br, "a4"), "")
	if !strings.HasPrefix(all, "a2 NO ") || strings.Contains(all, "a3 ") || !strings.Contains(all, "a4 OK") {
		t.Errorf("non-synchronizing APPEND before login: %q, want a2 NO, nothing for a3, a4 OK", all)
	}

	msg := "Subject: after login\r\n\r\nhello\r\n"
	fmt.Fprintf(conn, "b1 LOGIN %q %q\r\nb2 APPEND INBOX {%d}\r\n", user, imapPassword, len(msg))
	if l := readUntilTag(t, br, "b1"); !strings.HasPrefix(l[len(l)-1], "b1 OK") {
		t.Fatalf("LOGIN: %q", l)
	}
	if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND pipelined behind LOGIN: %q, want +", l)
	}
	fmt.Fprint(conn, msg+"\r\n")
	if l := readUntilTag(t, br, "b2"); !strings.HasPrefix(l[len(l)-1], "b2 OK") {
		t.Errorf("APPEND after login: %q", l)
	}
}

// TestIMAPAppendBeforeLoginNonSyncReadPastBounded: before login only
// LITERAL- is offered, so a non-synchronizing literal is at most 4096
// octets (RFC 7888 §4), and the APPEND it belongs to is refused before
// its message is read (AppendLimit 0). The message a client nobody knows
// sends anyway is read past only as far as any refused command's
// literals (64 KiB), then the session ends with BYE [TOOBIG]: it was read
// past up to MaxAppendBytes per command, as if the library were going
// to store it. A non-synchronizing APPEND pipelined behind the LOGIN
// that makes it valid is still taken whole.
func TestIMAPAppendBeforeLoginNonSyncReadPastBounded(t *testing.T) {
	c := nodetest.Start(t, 1)
	addr := startIMAP(t, c.Nodes[0], frontend.IMAPConfig{}, true)
	user := imapNewAddr(t)
	c.AddMailboxes(imapPassword, user)
	dial := func() (net.Conn, *bufio.Reader) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(conn)
		br.ReadString('\n')
		return conn, br
	}
	const size = 1 << 20
	body := "Subject: big\r\n\r\n" + strings.Repeat("x", size-len("Subject: big\r\n\r\n")-2) + "\r\n"

	conn, br := dial()
	go fmt.Fprintf(conn, "a1 APPEND INBOX {%d+}\r\n%s\r\na2 NOOP\r\n", size, body)
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			break
		}
		lines = append(lines, l)
	}
	all := strings.Join(lines, "")
	if !strings.Contains(all, "* BYE [TOOBIG]") || strings.Contains(all, "a2 ") {
		t.Errorf("1 MiB non-synchronizing APPEND before login: %q, want the session ended by BYE [TOOBIG] before a2", all)
	}

	conn, br = dial()
	fmt.Fprintf(conn, "b1 LOGIN %q %q\r\nb2 APPEND INBOX {%d+}\r\n%s\r\n", user, imapPassword, size, body)
	if l := readUntilTag(t, br, "b1"); !strings.HasPrefix(l[len(l)-1], "b1 OK") {
		t.Fatalf("LOGIN: %q", l)
	}
	if l := readUntilTag(t, br, "b2"); !strings.HasPrefix(l[len(l)-1], "b2 OK") {
		t.Errorf("non-synchronizing APPEND pipelined behind LOGIN: %q", l)
	}
}
