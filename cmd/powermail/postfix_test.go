package main

import (
	"fmt"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPostfixInFrontOfLMTP puts Debian's Postfix in front of the cluster,
// as the LMTP listener is meant to be used: Postfix accepts the mail and
// hands it to a follower's LMTP port, and must act on each recipient's
// own reply after the data (RFC 2033 §4.2). A recipient PowerMail knows
// is delivered, an unknown one bounces to the sender (550 5.1.1 is
// final), one over quota waits in Postfix's queue (452 4.2.2 is
// temporary) and is delivered once the quota is raised. Nothing is lost
// and nothing is delivered twice. .ci/run installs Postfix; elsewhere
// the test needs the postfix package and root.
func TestPostfixInFrontOfLMTP(t *testing.T) {
	requirePostfix(t)
	ps := startMailCluster(t)
	mustCLI(t, "mailbox", "add", "sender@example.com", "--password", "pw-sender", "--addr", ps[0].admin)
	// tiny@ (quota 1000 octets) is filled past its quota first.
	filler := "Subject: filler\r\n\r\n" + strings.Repeat("x", 1500) + "\r\n"
	if code, msg := send(t, ps[0].smtp, "s@elsewhere.net", []string{"tiny@example.com"}, filler); code != 250 {
		t.Fatalf("filling tiny@: %d %s", code, msg)
	}
	pf := startPostfix(t, ps[1].lmtp, "example.com")

	body := "From: sender@example.com\r\nSubject: through Postfix\r\nMessage-ID: <pf1@front.test>\r\n\r\nRelayed by Postfix over LMTP.\r\n"
	rcpts := []string{"alice@example.com", "bob@example.com", "nobody@example.com", "tiny@example.com"}
	if code, msg := send(t, pf.smtp, "sender@example.com", rcpts, body); code != 250 {
		t.Fatalf("Postfix refused the message: %d %s", code, msg)
	}
	pf.waitStatus(t, "alice@example.com", "sent", `250 2\.\d\.\d`)
	pf.waitStatus(t, "bob@example.com", "sent", `250 2\.\d\.\d`)
	pf.waitStatus(t, "nobody@example.com", "bounced", `550 5\.1\.1`)
	pf.waitStatus(t, "tiny@example.com", "deferred", `452 4\.2\.2`)

	// One body for both recipients, read from a third node over IMAP
	// with both hops' trace fields.
	a, b := messages(t, ps[2].admin, "alice@example.com"), messages(t, ps[2].admin, "bob@example.com")
	if len(a) != 1 || len(b) != 1 || a[0].Hash != b[0].Hash {
		t.Fatalf("alice %+v, bob %+v: want one message each with one body", a, b)
	}
	out := python(t, imapFetch, ps[2].imap, "alice@example.com", "pw-alice")
	if !strings.Contains(out, "Relayed by Postfix over LMTP.") || !strings.Contains(out, "(Postfix)") ||
		!regexp.MustCompile(`with (UTF8)?LMTP`).MatchString(out) || !strings.Contains(out, "Return-Path: <sender@example.com>") {
		t.Fatalf("alice@ over IMAP on n3 lacks the body or a trace field:\n%s", out)
	}

	// Postfix's bounce for nobody@ comes back to the sender, over LMTP too.
	waitMessages(t, ps[0].admin, "sender@example.com", 1)
	out = python(t, imapFetch, ps[0].imap, "sender@example.com", "pw-sender")
	if !strings.Contains(out, "nobody@example.com") || !strings.Contains(out, "5.1.1") {
		t.Fatalf("the sender's bounce does not name nobody@ and 5.1.1:\n%s", out)
	}

	// The deferred recipient is delivered once it has room, once.
	if n := len(messages(t, ps[0].admin, "tiny@example.com")); n != 1 {
		t.Fatalf("tiny@ holds %d messages before its quota is raised, want the filler only", n)
	}
	mustCLI(t, "mailbox", "quota", "tiny@example.com", "10M", "--addr", ps[0].admin)
	pf.flush(t)
	pf.waitStatus(t, "tiny@example.com", "sent", `250 2\.\d\.\d`)
	waitMessages(t, ps[1].admin, "tiny@example.com", 2)
	for _, mb := range []string{"alice@example.com", "bob@example.com", "sender@example.com"} {
		if n := len(messages(t, ps[1].admin, mb)); n != 1 {
			t.Errorf("%s holds %d messages, want 1", mb, n)
		}
	}
}

// requirePostfix skips the test where Postfix cannot run: without the
// package, or as a user who cannot start a private instance.
func requirePostfix(t *testing.T) {
	t.Helper()
	for _, f := range []string{"postfix", "postqueue", "python3"} {
		if _, err := exec.LookPath(f); err != nil {
			t.Skipf("%s is not installed (.ci/run installs Postfix from Debian)", f)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("a private Postfix instance needs root")
	}
	if _, err := os.Stat("/usr/share/postfix/master.cf.dist"); err != nil {
		t.Skipf("Debian's Postfix defaults are missing: %v", err)
	}
}

// postfixInstance is a private Postfix: its own configuration, queue and
// log under dir; nothing under /etc/postfix is read or written.
type postfixInstance struct {
	dir, etc, smtp string
}

// startPostfix configures Debian's defaults plus virtual delivery of
// domain over LMTP to lmtpAddr, and starts it on a free port.
func startPostfix(t *testing.T, lmtpAddr, domain string) *postfixInstance {
	t.Helper()
	dir, err := os.MkdirTemp("", "pm-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	pf := &postfixInstance{dir: dir, etc: filepath.Join(dir, "etc"), smtp: freeAddr(t)}
	t.Cleanup(func() { pf.stop(t) })
	for _, d := range []string{pf.etc, filepath.Join(dir, "spool"), filepath.Join(dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The daemons run as the postfix user outside their chroot too.
	os.Chmod(dir, 0o755)
	runCmd(t, "chown", "postfix", filepath.Join(dir, "data"))

	master, err := os.ReadFile("/usr/share/postfix/master.cf.dist")
	if err != nil {
		t.Fatal(err)
	}
	smtpLine := regexp.MustCompile(`(?m)^smtp\s+inet\s.*$`)
	if !smtpLine.Match(master) {
		t.Fatal("master.cf.dist has no smtp inet line to move")
	}
	master = smtpLine.ReplaceAll(master, []byte(pf.smtp+" inet n - y - - smtpd"))
	writeFile(t, filepath.Join(pf.etc, "master.cf"), string(master))

	mainCF, err := os.ReadFile("/usr/share/postfix/main.cf.debian")
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(lmtpAddr, ":")
	writeFile(t, filepath.Join(pf.etc, "main.cf"), string(mainCF)+fmt.Sprintf(`
queue_directory = %[1]s/spool
data_directory = %[1]s/data
myhostname = mx.front.test
mydomain = front.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
smtp_host_lookup = native
lmtp_host_lookup = native
virtual_mailbox_domains = %[2]s
virtual_mailbox_maps = static:ok
virtual_transport = lmtp:inet:[%[3]s]:%[4]s
maillog_file_prefixes = %[1]s
maillog_file = %[1]s/maillog
`, dir, domain, host, port))
	runCmd(t, "postfix", "-c", pf.etc, "check")
	cmd := exec.Command("sh", "/usr/lib/postfix/configure-instance.sh", "-")
	cmd.Env = append(os.Environ(), "MAIL_CONFIG="+pf.etc)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("configure-instance.sh: %v\n%s", err, out)
	}
	runCmd(t, "postfix", "-c", pf.etc, "start")
	waitGreeting(t, pf.smtp)
	return pf
}

// waitStatus waits for the log line that reports rcpt's delivery with
// status (sent, bounced, deferred) and a reply matching reply.
func (pf *postfixInstance) waitStatus(t *testing.T, rcpt, status, reply string) {
	t.Helper()
	re := regexp.MustCompile(`to=<` + regexp.QuoteMeta(rcpt) + `>.*status=` + status + ` \(.*` + reply)
	deadline := time.Now().Add(60 * time.Second)
	for {
		log, _ := os.ReadFile(filepath.Join(pf.dir, "maillog"))
		if re.Match(log) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix never logged %s for %s with %q; its log:\n%s", status, rcpt, reply, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// flush asks Postfix to try its deferred mail now.
func (pf *postfixInstance) flush(t *testing.T) {
	t.Helper()
	runCmd(t, "postqueue", "-c", pf.etc, "-f")
}

func (pf *postfixInstance) stop(t *testing.T) {
	if out, err := exec.Command("postfix", "-c", pf.etc, "stop").CombinedOutput(); err != nil {
		t.Logf("postfix stop: %v\n%s", err, out)
	}
	pidFile := filepath.Join(pf.dir, "spool", "pid", "master.pid")
	for range 100 {
		raw, err := os.ReadFile(pidFile)
		pid, perr := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || perr != nil || syscall.Kill(pid, 0) != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.RemoveAll(pf.dir)
}

// waitGreeting waits until a server at addr answers 220.
func waitGreeting(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := textproto.Dial("tcp", addr)
		if err == nil {
			_, _, err = c.ReadResponse(220)
			c.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no greeting from %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitMessages(t *testing.T, adminAddr, mailbox string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(messages(t, adminAddr, mailbox)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s never held %d messages: %+v", mailbox, n, messages(t, adminAddr, mailbox))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func runCmd(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
