package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"powermail/fsm"
)

// The rolling-upgrade test runs real binaries of two releases in one
// cluster: three nodes of the last release whose newest command encoding
// is 9, restarted one at a time onto this tree's binary while mail
// arrives, then raised to the newest encoding (upgradeTarget); and, at 9, followers of either
// release installing a snapshot the other's leader streamed
// (upgradesnap_test.go). It builds both releases and runs
// for minutes, so it runs only with POWERMAIL_UPGRADE_TEST=1
// (`make test-upgrade`).

// oldRelease is the last commit whose fsm.NewestEncoding is 9: the
// release before encodings 10 (the being-removed mark) and 11 (the UID
// limit, settings that name their fields, the forward depth check).
const oldRelease = "a0f7c64"

const upgradeEnv = "POWERMAIL_UPGRADE_TEST"

// upgradeTarget is the encoding the test raises the upgraded cluster
// to: the newest this tree reads (16: a folder an undo deletes is
// checked in the delete's entry; 15: queue recipients with long local
// parts; 14: a refused removal ends only its
// own hold, a repeated Copy answers its UIDs; 13: new names checked and
// stored in NFC; 12: queue retries that notices keep, removal marks held per
// removal), which has the rules of 11 that exerciseEncoding11 uses.
const upgradeTarget = fsm.NewestEncoding

// upgradeEntryMessages is the new nodes' --raft-entry-messages: small, so
// that removing the test's large mailboxes takes several entries.
const upgradeEntryMessages = "5"

// upgradeMailboxes receive the background sender's mail.
var upgradeMailboxes = []string{"alice", "bob", "carol"}

func TestRollingUpgrade(t *testing.T) {
	if os.Getenv(upgradeEnv) != "1" {
		t.Skipf("the rolling-upgrade test builds release %s and runs three-process clusters for a minute or more: "+
			"run it with %s=1 (make test-upgrade)", oldRelease, upgradeEnv)
	}
	oldBin := buildRelease(t, oldRelease)
	t.Run("upgrade then raise", func(t *testing.T) { upgradeThenRaise(t, oldBin) })
	t.Run("forced raise stops the old node", func(t *testing.T) { forcedRaise(t, oldBin) })
	t.Run("snapshots installed across releases", func(t *testing.T) { snapshotsAcrossReleases(t, oldBin) })
}

// upgradeThenRaise: three nodes of the old release, restarted one at a
// time onto this tree's binary while mail arrives, equal states in
// every mixed step, the raise refused while one node is old, then
// raised to the newest encoding and the rules of 11 used; no mail
// answered 250 is lost.
func upgradeThenRaise(t *testing.T, oldBin string) {
	ps := startOldCluster(t, oldBin)
	for _, p := range ps {
		assertReads(t, ps[0].admin, p.id, 9)
	}
	setUpDirectory(t, ps)

	snd := startSender(t, ps)
	defer snd.stop()

	// Restart followers first and the leader last, as an operator would:
	// a follower's restart costs no election. After each restart the
	// sender gets mail through every node before the next.
	order := upgradeOrder(t, ps)
	for i, p := range order {
		restartOn(t, p, "", "--raft-entry-messages", upgradeEntryMessages)
		assertReads(t, p.admin, p.id, upgradeTarget)
		snd.waitAcked(t, 30)
		if i == 0 {
			// A large mailbox removed in pieces by a new node while the
			// cluster is at 9: no mark, and the old nodes apply it alike.
			mustCLI(t, "mailbox", "rm", "big9@example.com", "--addr", p.admin)
		}
		checkStateEqual(t, p.admin, fmt.Sprintf("after %d of 3 nodes run the new release", i+1))
		if i != 1 {
			continue
		}
		// The last old node, the leader, restarts on the old release
		// once more: it hands leadership to a new node, so the new
		// release leads an old follower too.
		last := order[2]
		restartOn(t, last, oldBin)
		if l := leaderOf(t, ps); l == last {
			t.Fatalf("%s, restarted, leads again; want a node of the new release to lead", last.id)
		}
		snd.waitAcked(t, 30)
		checkStateEqual(t, last.admin, "with a new leader and an old follower")
		refusedRaise(t, ps, last)
	}

	// Every node reads the target: the raise is taken, and indexes the forwards
	// that exist (the old release wrote them).
	mustCLI(t, "settings", "set", "--command-encoding", fmt.Sprint(upgradeTarget), "--addr", leaderOf(t, ps).admin)
	for _, p := range ps {
		waitEncoding(t, p, upgradeTarget)
	}
	exerciseEncoding11(t, ps, snd)
	checkStateEqual(t, ps[1].admin, fmt.Sprintf("at encoding %d", upgradeTarget))
	finish(t, ps, snd)
}

// forcedRaise: the raise forced while the leader still runs the old
// release. The design (node/encodingraise.go, fsm "Command encoding")
// says that node stops at the raise, as a release stops on an encoding
// it does not read, and takes part again once upgraded: it must stop
// rather than apply the entry by its own rules, the other two go on
// taking mail, and after its upgrade it catches up to the same state.
func forcedRaise(t *testing.T, oldBin string) {
	ps := startOldCluster(t, oldBin)
	setUpDirectory(t, ps)
	snd := startSender(t, ps)
	defer snd.stop()
	order := upgradeOrder(t, ps)
	for _, p := range order[:2] {
		restartOn(t, p, "", "--raft-entry-messages", upgradeEntryMessages)
		snd.waitAcked(t, 20)
	}
	old := order[2]
	checkStateEqual(t, old.admin, "before the forced raise")

	// While the old node leads, the raise is forwarded to it and it
	// refuses a command of an encoding it does not read (its
	// CheckCommand): even forced, nothing is written and nothing stops.
	if _, errOut, err := cli(t, "", "settings", "set", "--command-encoding", fmt.Sprint(upgradeTarget), "--force", "--addr", order[0].admin); err == nil {
		t.Fatalf("a forced raise was taken while %s, of the old release, leads", old.id)
	} else {
		t.Logf("forced raise while %s (old) leads: %s", old.id, strings.TrimSpace(errOut))
	}
	if s := settingsOf(t, old); s.CommandEncoding != 9 {
		t.Fatalf("%s at encoding %d after the refused raise, want 9", old.id, s.CommandEncoding)
	}
	// Once a new node leads, the forced raise is written, and the old
	// follower meets it.
	restartOn(t, old, oldBin)
	if l := leaderOf(t, ps); l == old {
		t.Fatalf("%s, restarted, leads again; want a node of the new release to lead", old.id)
	}
	snd.waitAcked(t, 20)
	out := mustCLI(t, "settings", "set", "--command-encoding", fmt.Sprint(upgradeTarget), "--force", "--addr", order[0].admin)
	t.Logf("forced raise with %s on the old release: %s", old.id, strings.TrimSpace(out))
	waitLogText(t, old, "panic", 30*time.Second)
	err := old.stop(syscall.SIGKILL) // reaps it; it has exited already
	t.Logf("%s on the old release stopped at the raise (%v): %s", old.id, err, panicLine(old.log.String()))
	if err == nil {
		t.Errorf("%s exited cleanly at an entry it cannot read; want a stop that says why", old.id)
	}
	for _, p := range order[:2] {
		waitEncoding(t, p, upgradeTarget)
	}
	// The two nodes of the new release are a quorum: mail goes on.
	snd.waitAcked(t, 20)

	restartOn(t, old, "", "--raft-entry-messages", upgradeEntryMessages)
	waitEncoding(t, old, upgradeTarget)
	snd.waitAcked(t, 20)
	checkStateEqual(t, old.admin, "after the stopped node's upgrade")
	finish(t, ps, snd)
}

// finish stops the sender, checks that every delivery it had answered
// 250 is readable on every node, and compares the states.
func finish(t *testing.T, ps []*proc, snd *sender) {
	t.Helper()
	acked := snd.stop()
	t.Logf("the sender tried %d deliveries", snd.tried)
	if len(acked) < 50 {
		t.Errorf("only %d deliveries answered 250 during the upgrade", len(acked))
	}
	checkDelivered(t, ps, acked)
	checkStateEqual(t, ps[2].admin, "at the end")
}

// panicLine is the line of a log that says why the process panicked.
func panicLine(log string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "panic") {
			return l
		}
	}
	return "(no panic line)"
}

// waitLogText waits until p's log holds text.
func waitLogText(t *testing.T, p *proc, text string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.log.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %q in %v; the end of its log:\n%s", p.id, text, d, logTail(p.log.String(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// buildRelease builds cmd/powermail of commit rev from this repository
// into a temporary directory, and fails, not skips, where the clone has
// no such commit: a shallow clone must fetch its history first.
func buildRelease(t *testing.T, rev string) string {
	t.Helper()
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("the rolling-upgrade test builds release %s from this repository's history, and needs git and a clone: %v %s",
			rev, err, stderr)
	}
	repo := strings.TrimSpace(string(top))
	if err := exec.Command("git", "-C", repo, "cat-file", "-e", rev+"^{commit}").Run(); err != nil {
		shallow, _ := exec.Command("git", "-C", repo, "rev-parse", "--is-shallow-repository").Output()
		t.Fatalf("commit %s (the old release of the rolling-upgrade test) is not in %s (shallow clone: %s); "+
			"fetch the history with `git fetch --unshallow` (or clone without --depth) and run it again",
			rev, repo, strings.TrimSpace(string(shallow)))
	}
	dir := t.TempDir()
	archive := exec.Command("bash", "-c", `set -o pipefail; git -C "$1" archive "$2" | tar -x -C "$3"`, "archive", repo, rev, dir)
	if out, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", rev, err, out)
	}
	bin := filepath.Join(dir, "powermail")
	build := exec.Command("go", "build", "-o", bin, "./cmd/powermail")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build release %s: %v\n%s", rev, err, out)
	}
	return bin
}

// startOldCluster starts three nodes of bin, R=2, with every mail port
// and the flags in more.
func startOldCluster(t *testing.T, bin string, more ...string) []*proc {
	t.Helper()
	dir := t.TempDir()
	var ps []*proc
	for i := 1; i <= 3; i++ {
		ps = append(ps, &proc{bin: bin, id: fmt.Sprintf("n%d", i), cluster: freeAddr(t), admin: freeAddr(t),
			data: filepath.Join(dir, fmt.Sprint(i))})
	}
	ps[0].start(t, slices.Concat(ps[0].smtpArgs(t), []string{"--bootstrap", "--replicas", "2"}, more)...)
	ps[0].waitLeader(t, 30*time.Second)
	for i, p := range ps[1:] {
		p.start(t, slices.Concat(p.smtpArgs(t), []string{"--join", ps[0].admin}, more)...)
		waitStatus(t, ps[0].admin, 30*time.Second, func(s statusJSON) bool { return len(s.Nodes) == i+2 && s.Health == "healthy" })
	}
	for _, p := range ps {
		waitLog(t, p, `msg="node running"`)
	}
	return ps
}

// setUpDirectory creates, through the old release: the sender's
// mailboxes and a forward to two of them; two mailboxes of more messages
// than the new nodes put in one entry; and two chains of forwards that a
// forward added later would join past the depth delivery follows.
func setUpDirectory(t *testing.T, ps []*proc) {
	t.Helper()
	at := ps[1].admin
	mustCLI(t, "domain", "add", "example.com", "--addr", at)
	for _, u := range append(slices.Clone(upgradeMailboxes), "big9", "big11", "deep", "join") {
		mustCLI(t, "mailbox", "add", u+"@example.com", "--password", "pw-"+u, "--addr", at)
	}
	mustCLI(t, "forward", "add", "team@example.com", "--to", "alice@example.com", "--to", "bob@example.com", "--addr", at)
	chain(t, at, "low", 6, "deep@example.com") // low0 is 6 levels above deep@
	chain(t, at, "up", 4, "join@example.com")  // up0 reaches join@ 4 levels down
	for i := range 40 {
		for j, box := range []string{"big9", "big11"} {
			body := fmt.Sprintf("Subject: filler %d\r\n\r\nfiller\r\n", i)
			if code, msg := send(t, ps[j].smtp, "filler@elsewhere.net", []string{box + "@example.com"}, body); code != 250 {
				t.Fatalf("filler to %s: %d %s", box, code, msg)
			}
		}
	}
}

// chain adds forwards name0 -> name1 -> ... -> name<n-1> -> target from
// the bottom up.
func chain(t *testing.T, at, name string, n int, target string) {
	t.Helper()
	for i := n - 1; i >= 0; i-- {
		src := fmt.Sprintf("%s%d@example.com", name, i)
		mustCLI(t, "forward", "add", src, "--to", target, "--addr", at)
		target = src
	}
}

// upgradeOrder is the nodes followers first, the leader last.
func upgradeOrder(t *testing.T, ps []*proc) []*proc {
	t.Helper()
	l := leaderOf(t, ps)
	var out []*proc
	for _, p := range ps {
		if p != l {
			out = append(out, p)
		}
	}
	return append(out, l)
}

func leaderOf(t *testing.T, ps []*proc) *proc {
	t.Helper()
	for _, p := range ps {
		st, err := status(t, p.admin)
		if err == nil && st.Leader != "" {
			if l := byID(ps, st.Leader); l != nil {
				return l
			}
		}
	}
	t.Fatal("no node names a leader")
	return nil
}

// restartOn stops p (SIGTERM: a leader hands over first) and starts it
// on bin ("" for this tree's) with its first start's flags and more,
// and waits until it has rejoined: a healthy cluster of three, each
// member reachable from it. That it caught up shows in the check-state
// that follows each restart: every node digests its state at one entry.
func restartOn(t *testing.T, p *proc, bin string, more ...string) {
	t.Helper()
	stopGently(t, p)
	startOn(t, p, bin, more...)
}

// stopGently stops p with SIGTERM and fails unless it exits cleanly.
func stopGently(t *testing.T, p *proc) {
	t.Helper()
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("%s ended badly on SIGTERM: %v\n%s", p.id, err, logTail(p.log.String(), 30))
	}
}

// startOn starts the stopped p again, as restartOn does.
func startOn(t *testing.T, p *proc, bin string, more ...string) {
	t.Helper()
	if p.first == nil {
		p.first = p.extra
	}
	p.bin = bin
	p.start(t, append(slices.Clone(p.first), more...)...)
	waitLog(t, p, `msg="node running"`)
	waitAllReachable(t, p, 60*time.Second)
	t.Logf("%s restarted on %s", p.id, cmp.Or(bin, "the new release"))
}

// upgradeStatus is the part of cluster status this test reads beyond
// statusJSON.
type upgradeStatus struct {
	Health string          `json:"health"`
	Nodes  []upgradeMember `json:"nodes"`
}

type upgradeMember struct {
	ID        string `json:"id"`
	Reads     int    `json:"reads_encoding"`
	Reachable bool   `json:"reachable"`
}

// waitAllReachable waits until p reports a healthy cluster of three in
// which it reaches every node.
func waitAllReachable(t *testing.T, p *proc, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		out, _, _ := cli(t, "", "cluster", "status", "--json", "--addr", p.admin) // exit 1 while not healthy
		var st upgradeStatus
		if json.Unmarshal([]byte(out), &st) == nil && st.Health == "healthy" && len(st.Nodes) == 3 &&
			!slices.ContainsFunc(st.Nodes, func(n upgradeMember) bool { return !n.Reachable }) {
			return
		}
		last = out
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not see all three nodes healthy within %v: %s", p.id, d, last)
}

// assertReads checks the encoding node id says it reads, asked through
// addr.
func assertReads(t *testing.T, addr, id string, want int) {
	t.Helper()
	var st upgradeStatus
	if err := json.Unmarshal([]byte(statusCLI(t, "--json", "--addr", addr)), &st); err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		if n.ID == id {
			if n.Reads != want {
				t.Fatalf("%s reads up to encoding %d, want %d", id, n.Reads, want)
			}
			return
		}
	}
	t.Fatalf("%s not in the status via %s", id, addr)
}

// checkStateEqual runs cluster check-state and fails the test (going on)
// unless every node's state digest is equal.
func checkStateEqual(t *testing.T, addr, when string) {
	t.Helper()
	out, errOut, err := cli(t, "", "cluster", "check-state", "--wait", "60s", "--addr", addr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || lines[len(lines)-1] != "ALL EQUAL" {
		t.Errorf("check-state %s: %v\n%s%s", when, err, out, errOut)
		return
	}
	t.Logf("check-state %s:\n%s", when, out)
}

type upgradeSettings struct {
	Replicas        int `json:"replicas"`
	WriteQuorum     int `json:"write_quorum"`
	CommandEncoding int `json:"command_encoding"`
	MaxVoters       int `json:"max_voters"`
}

func settingsOf(t *testing.T, p *proc) upgradeSettings {
	t.Helper()
	var s upgradeSettings
	if err := json.Unmarshal([]byte(mustCLI(t, "settings", "show", "--json", "--addr", p.admin)), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func waitEncoding(t *testing.T, p *proc, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for settingsOf(t, p).CommandEncoding != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: command encoding %d, want %d", p.id, settingsOf(t, p).CommandEncoding, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// refusedRaise: with old still on the old release, a raise to
// upgradeTarget is
// refused, through a new node (it asks every member which encoding it
// reads: node/encodingraise.go) and through the old one (a raise the old
// release writes in 9 is refused by every release's apply: fsm
// raiseRefused). Nothing stops and the states stay equal.
func refusedRaise(t *testing.T, ps []*proc, old *proc) {
	t.Helper()
	for _, via := range ps {
		_, errOut, err := cli(t, "", "settings", "set", "--command-encoding", fmt.Sprint(upgradeTarget), "--addr", via.admin)
		if err == nil {
			t.Fatalf("a raise to %d through %s with %s on the old release was taken", upgradeTarget, via.id, old.id)
		}
		if via != old && !strings.Contains(errOut, old.id+" reads up to 9") {
			t.Errorf("the raise through %s was refused without naming %s: %s", via.id, old.id, errOut)
		}
		t.Logf("raise to %d through %s refused: %s", upgradeTarget, via.id, strings.TrimSpace(errOut))
	}
	waitStatus(t, old.admin, 10*time.Second, func(s statusJSON) bool { return s.Health == "healthy" && len(s.Nodes) == 3 })
	for _, p := range ps {
		if s := settingsOf(t, p); s.CommandEncoding != 9 {
			t.Fatalf("%s at encoding %d after the refused raises, want 9", p.id, s.CommandEncoding)
		}
	}
	checkStateEqual(t, old.admin, "after the refused raises")
}

// exerciseEncoding11 uses what 11 brings, through the new release:
// a large mailbox removed in pieces under the being-removed mark while
// the sender tries it, a forward the depth check refuses (the chain
// above it was written by the old release and indexed by the raise), and
// a settings update that names one field.
func exerciseEncoding11(t *testing.T, ps []*proc, snd *sender) {
	t.Helper()
	snd.extra("big11@example.com")
	mustCLI(t, "mailbox", "rm", "big11@example.com", "--addr", ps[0].admin)
	snd.extra("")
	// Mail answered 250 before the mark goes with the mailbox; once a
	// node has refused it (450 while marked, 550 once gone), no node may
	// take it again to remove it.
	codes := snd.extraCodes()
	t.Logf("replies to mail for big11@ while it was removed, in order: %v", codes)
	if i := slices.IndexFunc(codes, func(c int) bool { return c >= 400 }); i >= 0 && slices.Contains(codes[i:], 250) {
		t.Errorf("mail for big11@ answered 250 after a refusal while it was removed: %v", codes)
	}
	for _, p := range ps {
		out := mustCLI(t, "mailbox", "ls", "--addr", p.admin)
		if strings.Contains(out, "big11@") || strings.Contains(out, "big9@") {
			t.Errorf("%s still lists a removed mailbox:\n%s", p.id, out)
		}
	}

	// up0 -> ... -> up3 -> join@ above, low0 -> ... -> low5 -> deep@
	// below: joining at low0 makes up0 11 levels deep, at low1 10.
	_, errOut, err := cli(t, "", "forward", "add", "join@example.com", "--to", "low0@example.com", "--addr", ps[1].admin)
	if err == nil {
		t.Errorf("a forward joining chains past 10 levels was taken at encoding %d", upgradeTarget)
	} else {
		t.Logf("the depth check refused join@ -> low0@: %s", strings.TrimSpace(errOut))
	}
	mustCLI(t, "forward", "add", "join@example.com", "--to", "low1@example.com", "--addr", ps[2].admin)
	// RCPT reads the local state (node/DESIGN.md, "RCPT without a round
	// trip"), and a node that has not applied the new forward yet
	// delivers to join@'s own mailbox: the admin API's read barrier on
	// the node the mail goes through settles that first.
	var res string
	admin(t, ps[0].admin, "/v1/resolve/up0@example.com", &res)
	if !strings.Contains(res, `"deep@example.com"`) {
		t.Errorf("up0@ resolves to %s, want deep@", res)
	}
	if code, msg := send(t, ps[0].smtp, "s@elsewhere.net", []string{"up0@example.com"}, "Subject: deep\r\nX-Upgrade-Token: deep-1\r\n\r\n10 levels\r\n"); code != 250 {
		t.Errorf("mail to the top of a chain 10 deep: %d %s", code, msg)
	} else {
		snd.record("deep-1", "deep")
	}

	out := mustCLI(t, "settings", "set", "--max-voters", "3", "--addr", ps[2].admin)
	t.Logf("partial settings update: %s", strings.TrimSpace(out))
	for _, p := range ps {
		if s := settingsOf(t, p); s != (upgradeSettings{Replicas: 2, WriteQuorum: 2, CommandEncoding: upgradeTarget, MaxVoters: 3}) {
			t.Errorf("%s after settings set --max-voters 3: %+v", p.id, s)
		}
	}
}

// sender delivers mail over SMTP to every node in turn until stopped,
// and remembers each message answered 250 with the mailboxes it is for.
type sender struct {
	ps   []*proc
	done chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	acked    map[string][]string // token -> mailboxes (local parts)
	tried    int
	also     string // an extra recipient tried alone, "" for none
	alsoSeen []int  // the replies to it, in order
}

func startSender(t *testing.T, ps []*proc) *sender {
	s := &sender{ps: ps, done: make(chan struct{}), acked: map[string][]string{}}
	s.wg.Go(s.run)
	return s
}

func (s *sender) run() {
	for i := 0; ; i++ {
		select {
		case <-s.done:
			return
		case <-time.After(40 * time.Millisecond):
		}
		p := s.ps[i%len(s.ps)]
		rcpt, boxes := upgradeMailboxes[i%len(upgradeMailboxes)], []string{upgradeMailboxes[i%len(upgradeMailboxes)]}
		if i%5 == 4 {
			rcpt, boxes = "team", []string{"alice", "bob"}
		}
		token := fmt.Sprintf("m%05d-%s", i, p.id)
		code := sendOnce(p.smtp, rcpt+"@example.com", token)
		s.mu.Lock()
		s.tried++
		if code == 250 {
			s.acked[token] = boxes
		}
		also := s.also
		s.mu.Unlock()
		if also != "" {
			code := sendOnce(p.smtp, also, fmt.Sprintf("x%05d", i))
			s.mu.Lock()
			s.alsoSeen = append(s.alsoSeen, code)
			s.mu.Unlock()
		}
	}
}

// sendOnce delivers one message carrying token and returns the first
// reply code that is not a success (250 when all are, -1 on a network
// error): every exchange has a deadline, as a node may be stopping.
func sendOnce(addr, to, token string) int {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return -1
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	c, err := smtp.NewClient(conn, "localhost")
	if err != nil {
		conn.Close()
		return smtpCode(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		return smtpCode(err)
	}
	if err := c.Mail("sender@elsewhere.net"); err != nil {
		return smtpCode(err)
	}
	if err := c.Rcpt(to); err != nil {
		return smtpCode(err)
	}
	w, err := c.Data()
	if err != nil {
		return smtpCode(err)
	}
	fmt.Fprintf(w, "Subject: upgrade %s\r\nX-Upgrade-Token: %s\r\n\r\nsent during the rolling upgrade\r\n", token, token)
	if err := w.Close(); err != nil {
		return smtpCode(err)
	}
	c.Quit()
	return 250
}

// waitAcked waits until n more deliveries than now were answered 250.
func (s *sender) waitAcked(t *testing.T, n int) {
	t.Helper()
	s.mu.Lock()
	want := len(s.acked) + n
	s.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s.mu.Lock()
		got, tried := len(s.acked), s.tried
		s.mu.Unlock()
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sender got %d of %d deliveries answered 250 (%d tried) in 60s", got, want, tried)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *sender) record(token string, boxes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acked[token] = boxes
}

func (s *sender) extra(to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.also = to
}

func (s *sender) extraCodes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.alsoSeen)
}

// stop ends the sender (again is harmless) and returns what was acked.
func (s *sender) stop() map[string][]string {
	s.mu.Lock()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// checkDelivered exports every mailbox the acked mail is for from every
// node (the export reads each body, from another node when it is not
// held here) and fails for each acked token missing from one of them.
func checkDelivered(t *testing.T, ps []*proc, acked map[string][]string) {
	t.Helper()
	want := map[string][]string{} // mailbox -> tokens
	for token, boxes := range acked {
		for _, b := range boxes {
			want[b] = append(want[b], token)
		}
	}
	dir := t.TempDir()
	for _, p := range ps {
		for box, tokens := range want {
			path := filepath.Join(dir, p.id+"-"+box+".tar")
			mustCLI(t, "mailbox", "export", box+"@example.com", "--out", path, "--addr", p.admin)
			files, _ := readTar(t, path)
			have := map[string]bool{}
			for _, content := range files {
				if _, rest, ok := strings.Cut(content, "X-Upgrade-Token: "); ok {
					tok, _, _ := strings.Cut(rest, "\r\n")
					have[tok] = true
				}
			}
			var lost []string
			for _, tok := range tokens {
				if !have[tok] {
					lost = append(lost, tok)
				}
			}
			if len(lost) > 0 {
				slices.Sort(lost)
				t.Errorf("%s: %d of %d messages answered 250 for %s@ are missing: %v", p.id, len(lost), len(tokens), box, lost)
			}
		}
	}
	t.Logf("%d deliveries answered 250, every one readable on all 3 nodes unless reported above", len(acked))
}
