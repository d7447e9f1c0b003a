package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"powermail/fsm"
)

// These tests speak real SMTP (net/smtp) to the real binary.

func (p *proc) smtpArgs(t *testing.T) []string {
	if p.smtp == "" {
		p.smtp = freeAddr(t)
	}
	if p.imap == "" {
		p.imap, p.pop3, p.sub, p.lmtp = freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	}
	return []string{"--smtp", p.smtp, "--hostname", "mx." + p.id + ".test",
		"--imap", p.imap, "--pop3", p.pop3, "--submission", p.sub, "--lmtp", p.lmtp, "--allow-insecure-auth"}
}

func startMailCluster(t *testing.T) []*proc {
	return startMailClusterN(t, 3)
}

// startMailClusterN starts size nodes with every mail protocol and the
// given extra server flags, and creates the test mailboxes.
func startMailClusterN(t *testing.T, size int, extra ...string) []*proc {
	t.Helper()
	dir := t.TempDir()
	var ps []*proc
	for i := 1; i <= size; i++ {
		ps = append(ps, &proc{id: fmt.Sprintf("n%d", i), cluster: freeAddr(t), admin: freeAddr(t), data: fmt.Sprintf("%s/%d", dir, i)})
	}
	ps[0].start(t, append(append(ps[0].smtpArgs(t), extra...), "--bootstrap")...)
	ps[0].waitLeader(t, 30*time.Second)
	for i, p := range ps[1:] {
		joined := func(s statusJSON) bool { return len(s.Nodes) == i+2 && s.Health == "healthy" }
		for attempt := 1; ; attempt++ {
			p.start(t, append(append(p.smtpArgs(t), extra...), "--join", ps[0].admin)...)
			if _, ok := pollStatus(t, ps[0].admin, 30*time.Second, joined); ok {
				break
			}
			p.stop(syscall.SIGKILL)
			// Another process may take a port between freeAddr and the
			// node's bind; only that is worth a second try.
			if attempt == 2 || !strings.Contains(p.log.String(), "address already in use") {
				t.Fatalf("%s did not join within 30s; its log:\n%s", p.id, p.log.String())
			}
			t.Logf("%s: a port was taken before it could bind; again on new ports", p.id)
			p.cluster, p.admin, p.smtp, p.imap, p.pop3, p.sub, p.lmtp = freeAddr(t), freeAddr(t), "", "", "", "", ""
			p.data += "-again"
		}
	}
	// The admin API answers (and reports a leader) before the server has
	// opened its mail ports: a node's bootstrap or join runs first.
	for _, p := range ps {
		waitLog(t, p, `msg="node running"`) // after its listeners are bound
	}
	mustCLI(t, "domain", "add", "example.com", "--addr", ps[0].admin)
	for _, u := range []string{"alice", "bob", "carol"} {
		mustCLI(t, "mailbox", "add", u+"@example.com", "--password", "pw-"+u, "--addr", ps[0].admin)
	}
	mustCLI(t, "mailbox", "add", "tiny@example.com", "--password", "pw", "--quota", "1000", "--addr", ps[0].admin)
	return ps
}

// smtpCode extracts the reply code from a net/smtp error (0 for nil).
func smtpCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	if err != nil {
		return -1
	}
	return 0
}

// send delivers one message and returns the first failing reply code.
func send(t *testing.T, addr, from string, to []string, body string) (int, string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return smtpCode(err), err.Error()
	}
	if err := c.Mail(from); err != nil {
		return smtpCode(err), err.Error()
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return smtpCode(err), err.Error()
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpCode(err), err.Error()
	}
	io.WriteString(w, body)
	if err := w.Close(); err != nil {
		return smtpCode(err), err.Error()
	}
	c.Quit()
	return 250, ""
}

func admin(t *testing.T, addr, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+cliSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if s, ok := out.(*string); ok {
			*s = string(raw)
		} else {
			json.Unmarshal(raw, out)
		}
	}
	return resp.StatusCode
}

type indexEntry struct {
	UID  uint32 `json:"uid"`
	Hash string `json:"hash"`
	Size int64  `json:"size"`
}

func messages(t *testing.T, adminAddr, mailbox string) []indexEntry {
	var out []indexEntry
	admin(t, adminAddr, "/v1/mailboxes/"+mailbox+"/messages", &out)
	return out
}

func TestSMTPDeliveryAcrossTheCluster(t *testing.T) {
	ps := startMailCluster(t)
	body := "Subject: three users\r\nMessage-ID: <one@test>\r\n\r\nHello all.\r\n"
	if code, msg := send(t, ps[0].smtp, "sender@elsewhere.net", []string{"alice@example.com", "Bob@example.com", "carol+x@example.com"}, body); code != 250 {
		t.Fatalf("send: %d %s", code, msg)
	}
	// The receiving node's /metrics counts the transaction.
	var metrics string
	if code := admin(t, ps[0].admin, "/metrics", &metrics); code != 200 ||
		!strings.Contains(metrics, `powermail_smtp_replies_total{code="250",command="data",proto="smtp",status="2.0.0"} 1`) ||
		!strings.Contains(metrics, `powermail_smtp_replies_total{code="250",command="rcpt",proto="smtp",status="2.0.0"} 3`) ||
		!strings.Contains(metrics, `powermail_connections_total{proto="smtp"} 1`) ||
		!strings.Contains(metrics, `powermail_connections_open{proto="imap"} 0`) {
		t.Fatalf("/metrics (%d) does not count the delivery:\n%s", code, grepLines(metrics, "powermail_"))
	}
	// Every node's index has the message for all three, with one body.
	var hash string
	for _, p := range ps {
		for _, u := range []string{"alice", "bob", "carol"} {
			m := messages(t, p.admin, u+"@example.com")
			if len(m) != 1 || m[0].UID != 1 {
				t.Fatalf("%s on %s: %+v", u, p.id, m)
			}
			if hash == "" {
				hash = m[0].Hash
			}
			if m[0].Hash != hash {
				t.Fatalf("%s has body %s, want the one body %s", u, m[0].Hash, hash)
			}
		}
	}
	// The body is on exactly R=2 nodes.
	held := 0
	for _, p := range ps {
		var v struct {
			HeldHere bool     `json:"held_here"`
			Replicas []string `json:"replicas"`
			Refs     int      `json:"refs"`
		}
		admin(t, p.admin, "/v1/bodies/"+hash, &v)
		if v.HeldHere {
			held++
		}
		if len(v.Replicas) != 2 || v.Refs != 3 {
			t.Fatalf("body record on %s: %+v", p.id, v)
		}
	}
	if held != 2 {
		t.Fatalf("body held by %d nodes, want 2", held)
	}
	// Reading through any node works (a node without a copy fetches one).
	// The stored body is the message with Return-Path and Received prepended.
	var raw string
	if code := admin(t, ps[2].admin, "/v1/mailboxes/carol@example.com/messages/1/raw", &raw); code != 200 ||
		!strings.HasPrefix(raw, "Return-Path: <sender@elsewhere.net>\r\nReceived: ") || !strings.HasSuffix(raw, body) {
		t.Fatalf("raw message (%d):\n%s", code, raw)
	}
	sum := sha256.Sum256([]byte(raw))
	if hex.EncodeToString(sum[:]) != hash {
		t.Fatal("index hash does not match the stored body")
	}
}

func TestSMTPReplyClasses(t *testing.T) {
	ps := startMailCluster(t)
	// tiny@ has a 1000-byte quota. The first 1500-byte message passes RCPT
	// (nothing used yet) and is never dropped afterwards; the mailbox is
	// then over quota, so the next RCPT gets 452 4.2.2.
	big := "Subject: big\r\n\r\n" + strings.Repeat("z", 1500) + "\r\n"
	if code, msg := send(t, ps[1].smtp, "s@elsewhere.net", []string{"tiny@example.com"}, big); code != 250 {
		t.Fatalf("first message to tiny: %d %s", code, msg)
	}
	// The quota gate reads the node's local state, which follows the
	// leader within milliseconds; wait until n3 has applied the first one.
	deadline := time.Now().Add(5 * time.Second)
	for len(messages(t, ps[2].admin, "tiny@example.com")) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if code, msg := send(t, ps[2].smtp, "s@elsewhere.net", []string{"tiny@example.com"}, big); code != 452 {
		t.Fatalf("over quota: %d %s, want 452", code, msg)
	}
	cases := []struct {
		name string
		to   []string
		want int
	}{
		{"unknown user", []string{"nobody@example.com"}, 550},
		{"relay attempt", []string{"victim@elsewhere.net"}, 550},
	}
	for _, c := range cases {
		code, msg := send(t, ps[1].smtp, "s@elsewhere.net", c.to, "Subject: x\r\n\r\nx\r\n")
		if code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, msg, c.want)
		}
	}
	// Oversize: SIZE= above the limit is refused at MAIL FROM.
	c, err := smtp.Dial(ps[1].smtp)
	if err != nil {
		t.Fatal(err)
	}
	c.Hello("client.test")
	if _, err := c.Text.Cmd("MAIL FROM:<s@elsewhere.net> SIZE=60000000"); err == nil {
		_, _, err = c.Text.ReadResponse(250)
		if smtpCode(err) != 552 {
			t.Errorf("oversize SIZE: %v", err)
		}
	}
	c.Close()

	// No quorum: stop two nodes; the survivor answers 4xx, never 5xx.
	ps[0].stop(syscall.SIGKILL)
	ps[2].stop(syscall.SIGKILL)
	code, msg := send(t, ps[1].smtp, "s@elsewhere.net", []string{"alice@example.com"}, "Subject: x\r\n\r\nx\r\n")
	if code < 400 || code >= 500 {
		t.Fatalf("no quorum: %d %s, want a 4xx", code, msg)
	}
}

// TestAcknowledgedMailSurvivesKill9 kills a node the instant after each
// 250 and checks that every acknowledged message is still readable from
// the cluster (R=2: losing any R-1 = 1 node loses nothing).
func TestAcknowledgedMailSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts processes")
	}
	ps := startMailCluster(t)
	var sent []string
	for round := 0; round < 3; round++ {
		victim := ps[round%3]
		entry := ps[(round+1)%3]
		body := fmt.Sprintf("Subject: round %d\r\nMessage-ID: <r%d@test>\r\n\r\n%s\r\n", round, round, strings.Repeat("payload line\r\n", 2000))
		if code, msg := send(t, entry.smtp, "s@elsewhere.net", []string{"alice@example.com"}, body); code != 250 {
			t.Fatalf("round %d: %d %s", round, code, msg)
		}
		victim.stop(syscall.SIGKILL)
		sent = append(sent, body)
		// Read every acknowledged message through a surviving node.
		reader := ps[(round+2)%3]
		for i, want := range sent {
			var raw string
			deadline := time.Now().Add(10 * time.Second)
			for {
				code := admin(t, reader.admin, fmt.Sprintf("/v1/mailboxes/alice@example.com/messages/%d/raw", i+1), &raw)
				if code == 200 && strings.HasSuffix(raw, want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: message %d unreadable via %s after killing %s: %d %.200s", round, i+1, reader.id, victim.id, code, raw)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		victim.start(t, victim.smtpArgs(t)...)
		waitStatus(t, victim.admin, 30*time.Second, func(s statusJSON) bool { return s.Health == "healthy" })
		waitLog(t, victim, `msg="node running"`)
	}
	_ = os.Getenv
}

type storageStats struct {
	Bodies    int64 `json:"Bodies"`
	BodyBytes int64 `json:"BodyBytes"`
	DiskBytes int64 `json:"DiskBytes"`
}

// TestThousandRecipientsStoredOnce sends one message to 1,000 mailboxes
// and checks that the cluster holds exactly R copies of its body.
func TestThousandRecipientsStoredOnce(t *testing.T) {
	ps := startMailCluster(t)
	var csv strings.Builder
	var rcpts []string
	for i := 0; i < 1000; i++ {
		a := fmt.Sprintf("list%04d@example.com", i)
		quota := ""
		if i == 0 {
			quota = ",1G" // units as --quota takes them
		}
		fmt.Fprintf(&csv, "%s,%s\n", a, quota)
		rcpts = append(rcpts, a)
	}
	if _, errOut, err := cli(t, csv.String(), "mailbox", "import", "-", "--addr", ps[0].admin); err == nil || !strings.Contains(errOut, "no password hash") {
		t.Fatalf("import of rows without a hash: %v %s", err, errOut)
	}
	if _, errOut, err := cli(t, csv.String(), "mailbox", "import", "-", "--allow-no-password", "--addr", ps[0].admin); err != nil {
		t.Fatalf("import: %v %s", err, errOut)
	}
	before := map[string]storageStats{}
	beforeDisk := map[string]int64{}
	for _, p := range ps {
		var s storageStats
		admin(t, p.admin, "/v1/storage", &s)
		before[p.id] = s
		beforeDisk[p.id] = dirSize(p.data + "/bodies")
	}
	body := "Subject: to everyone\r\n\r\n" + strings.Repeat("This line is part of a 64 KiB message body.\r\n", 1500)
	if code, msg := send(t, ps[0].smtp, "s@elsewhere.net", rcpts, body); code != 250 {
		t.Fatalf("send: %d %s", code, msg)
	}
	var copies, bytes int64
	for _, p := range ps {
		var s storageStats
		admin(t, p.admin, "/v1/storage", &s)
		copies += s.Bodies - before[p.id].Bodies
		bytes += s.BodyBytes - before[p.id].BodyBytes
		t.Logf("%s: +%d bodies, +%d body bytes, +%d bytes in the bodies directory", p.id, s.Bodies-before[p.id].Bodies,
			s.BodyBytes-before[p.id].BodyBytes, dirSize(p.data+"/bodies")-beforeDisk[p.id])
	}
	if copies != 2 || bytes > 2*int64(len(body)+1024) {
		t.Fatalf("1000 recipients: %d copies, %d bytes across the cluster; want 2 copies of ~%d bytes", copies, bytes, len(body))
	}
	if m := messages(t, ps[2].admin, "list0999@example.com"); len(m) != 1 {
		t.Fatalf("last recipient: %+v", m)
	}
}

// dirSize adds up the sizes of the files under dir (what du would count,
// less block rounding).
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// TestSingleNodeTrialCluster: a one-node cluster bootstrapped with
// --replicas 1 accepts mail with one copy. Raising R (and so W) beyond the
// nodes there are makes deliveries wait with a 4xx rather than accept
// fewer copies than promised.
func TestSingleNodeTrialCluster(t *testing.T) {
	p := &proc{id: "solo", cluster: freeAddr(t), admin: freeAddr(t), data: t.TempDir()}
	p.start(t, append(p.smtpArgs(t), "--bootstrap", "--replicas", "1")...)
	waitStatus(t, p.admin, 10*time.Second, func(s statusJSON) bool { return s.Leader == "solo" })
	waitReplicas(t, p.admin, 1)
	waitLog(t, p, `msg="node running"`)
	mustCLI(t, "domain", "add", "solo.test", "--addr", p.admin)
	mustCLI(t, "mailbox", "add", "me@solo.test", "--no-password", "--addr", p.admin)
	if code, msg := send(t, p.smtp, "a@elsewhere.net", []string{"me@solo.test"}, "Subject: solo\r\n\r\nhi\r\n"); code != 250 {
		t.Fatalf("send: %d %s", code, msg)
	}
	// Raising W above the number of nodes makes deliveries wait (4xx),
	// never accept with fewer copies than promised.
	if _, errOut, err := cli(t, "", "settings", "set", "--replicas", "2", "--addr", p.admin); err != nil || !strings.Contains(errOut, "warning: write quorum 2 is more than the 1 members") {
		t.Fatalf("settings set --replicas 2 on one node: %v %q", err, errOut)
	}
	// A new cluster writes the newest command encoding, and changing R
	// through the CLI keeps it.
	var set fsm.Settings
	if err := json.Unmarshal([]byte(mustCLI(t, "settings", "show", "--json", "--addr", p.admin)), &set); err != nil {
		t.Fatal(err)
	}
	if set.Replicas != 2 || set.WriteQuorum != 2 || set.CommandEncoding != fsm.NewestEncoding {
		t.Fatalf("settings after set --replicas 2: %+v", set)
	}
	if _, _, err := cli(t, "", "settings", "set", "--addr", p.admin); err == nil {
		t.Fatal("settings set without a setting succeeded")
	}
	if _, errOut, err := cli(t, "", "settings", "set", "--max-voters", "4", "--addr", p.admin); err == nil || !strings.Contains(errOut, "odd") {
		t.Fatalf("an even voter cap: %v %q", err, errOut)
	}
	if out := mustCLI(t, "settings", "set", "--max-voters", "3", "--addr", p.admin); !strings.Contains(out, "max voters 3") {
		t.Fatalf("settings set --max-voters 3: %q", out)
	}
	if code, msg := send(t, p.smtp, "a@elsewhere.net", []string{"me@solo.test"}, "Subject: two copies\r\n\r\nhi\r\n"); code != 451 {
		t.Fatalf("R=W=2 on one node: %d %s, want 451", code, msg)
	}
	if m := messages(t, p.admin, "me@solo.test"); len(m) != 1 {
		t.Fatalf("messages: %+v", m)
	}
}

// TestLMTPPerRecipientStatus drives the binary's LMTP listener with raw
// lines: one reply per recipient after the final dot (RFC 2033 §4.2).
func TestLMTPPerRecipientStatus(t *testing.T) {
	p := &proc{id: "lmtp", cluster: freeAddr(t), admin: freeAddr(t), data: t.TempDir()}
	lmtpAddr := freeAddr(t)
	p.start(t, "--bootstrap", "--replicas", "1", "--lmtp", lmtpAddr)
	waitStatus(t, p.admin, 10*time.Second, func(s statusJSON) bool { return s.Leader == "lmtp" })
	waitReplicas(t, p.admin, 1)
	mustCLI(t, "domain", "add", "example.com", "--addr", p.admin)
	mustCLI(t, "mailbox", "add", "a@example.com", "--no-password", "--addr", p.admin)
	mustCLI(t, "mailbox", "add", "b@example.com", "--no-password", "--addr", p.admin)
	c, err := textproto.Dial("tcp", lmtpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expect := func(code int, format string, args ...any) {
		t.Helper()
		if format != "" {
			if err := c.PrintfLine(format, args...); err != nil {
				t.Fatal(err)
			}
		}
		if _, msg, err := c.ReadResponse(code); err != nil {
			t.Fatalf("%q: %v %s", fmt.Sprintf(format, args...), err, msg)
		}
	}
	expect(220, "")
	expect(250, "LHLO mta.test")
	expect(250, "MAIL FROM:<s@elsewhere.net>")
	expect(250, "RCPT TO:<a@example.com>")
	expect(250, "RCPT TO:<b@example.com>")
	expect(550, "RCPT TO:<nobody@example.com>")
	expect(354, "DATA")
	w := c.DotWriter()
	io.WriteString(w, "Subject: via lmtp\r\n\r\nhello\r\n")
	w.Close()
	expect(250, "") // a@
	expect(250, "") // b@
	for _, mb := range []string{"a@example.com", "b@example.com"} {
		if m := messages(t, p.admin, mb); len(m) != 1 {
			t.Fatalf("%s: %+v", mb, m)
		}
	}
}

// waitReplicas waits until the bootstrap settings (written by the new
// leader just after it is elected) show R=W=want.
func waitReplicas(t *testing.T, adminAddr string, want int) {
	t.Helper()
	var set struct {
		Replicas    int `json:"replicas"`
		WriteQuorum int `json:"write_quorum"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for admin(t, adminAddr, "/v1/settings", &set); set.Replicas != want && time.Now().Before(deadline); admin(t, adminAddr, "/v1/settings", &set) {
		time.Sleep(50 * time.Millisecond)
	}
	if set.Replicas != want || set.WriteQuorum != want {
		t.Fatalf("settings %+v, want R=W=%d", set, want)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
