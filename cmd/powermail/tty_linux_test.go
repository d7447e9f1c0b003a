package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair, or skips where the machine has
// none to give.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// A password typed at a terminal gets a prompt and is not echoed.
func TestPasswordFromATerminalIsNotEchoed(t *testing.T) {
	m, s := openPTY(t)
	c := exec.Command(binary, "mailbox", "add", "tty@example.com", "--addr", "127.0.0.1:1", "--token", "x")
	c.Stdin, c.Stdout, c.Stderr = s, s, s
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	out := make(chan string, 1)
	go func() {
		var b strings.Builder
		sent := false
		buf := make([]byte, 256)
		for {
			k, err := m.Read(buf)
			b.Write(buf[:k])
			if !sent && strings.Contains(b.String(), "Password: ") {
				m.Write([]byte("typed-secret\n"))
				sent = true
			}
			if err != nil {
				out <- b.String()
				return
			}
		}
	}()
	c.Wait()
	var got string
	select {
	case got = <-out:
	case <-time.After(10 * time.Second):
		t.Fatal("no end of output from the terminal")
	}
	if !strings.Contains(got, "Password: ") || strings.Contains(got, "typed-secret") {
		t.Fatalf("terminal showed %q: want a prompt and no echo of the password", got)
	}
}

// mailbox restore - and mailbox import - with a terminal for stdin
// waited, without a word, for an archive or a CSV to be typed; they
// now refuse at once, as export refuses to write its archive there.
func TestStdinArchiveFromATerminalIsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"mailbox", "restore", "a@example.com", "-"},
		{"mailbox", "import", "-"},
	} {
		_, s := openPTY(t)
		c := exec.Command(binary, append(args, "--addr", "127.0.0.1:1", "--token", "x")...)
		var errb strings.Builder
		c.Stdin, c.Stderr = s, &errb
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(errb.String(), "stdin is a terminal") {
				t.Errorf("%v: %v %q", args, err, errb.String())
			}
		case <-time.After(5 * time.Second):
			c.Process.Kill()
			<-done
			t.Errorf("%v waited on the terminal", args)
		}
		s.Close()
	}
}
