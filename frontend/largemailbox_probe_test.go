package frontend_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"powermail/frontend"
	"powermail/node/nodetest"
)

// The probes below time what a large mailbox costs through real parts
// (a three-node cluster, go-imap's server, raw protocol lines) and log
// it; BENCHMARKS.md ("Large mailboxes") records what they gave. They
// run only when asked, as they fill folders of up to 2^N messages:
//
//	PM_PROBE_LOG2=16 go test -count=1 -run 'TestLargeMailboxProbe(IMAP|POP3|Idle)' -v ./frontend
//	PM_PROBE_FOLDERS=5000 go test -count=1 -run TestLargeMailboxProbeFolders -v ./frontend
//
// probeHeap is the live heap after a collection.
func probeHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestLargeMailboxProbeIMAP(t *testing.T) {
	log2, _ := strconv.Atoi(os.Getenv("PM_PROBE_LOG2"))
	if log2 == 0 {
		t.Skip("PM_PROBE_LOG2 unset")
	}
	start := time.Now()
	c, _, user := largeInbox(t, log2, 2000)
	t.Logf("fill %d in %v", 1<<log2, time.Since(start))
	addr := probeIMAP(t, c)
	r := dialIMAPRaw(t, addr, user)
	r.wait = 120 * time.Second
	r2 := dialIMAPRaw(t, addr, user)
	r2.wait = 120 * time.Second
	timed := func(rr *imapRaw, cmd string) []string {
		h0 := probeHeap()
		var ms0 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		t0 := time.Now()
		u, tagged := rr.cmd(cmd)
		d := time.Since(t0)
		var ms1 runtime.MemStats
		runtime.ReadMemStats(&ms1)
		t.Logf("%-45s %10v  untagged=%d alloc=%dMiB heapAfterGC=%+dMiB tag=%.40s", cmd, d, len(u), (ms1.TotalAlloc-ms0.TotalAlloc)>>20, (int64(probeHeap())-int64(h0))>>20, tagged)
		return u
	}
	timed(r, "SELECT INBOX")
	timed(r2, "EXAMINE INBOX")
	timed(r, "UID FETCH 1:* (FLAGS)")
	timed(r, "FETCH 1:* (UID RFC822.SIZE INTERNALDATE)")
	timed(r, "UID SEARCH UNSEEN")
	timed(r, "SEARCH SUBJECT x")
	timed(r, "STORE 1:* +FLAGS.SILENT (\\Seen)")
	timed(r2, "NOOP")
	timed(r, "UID SEARCH UNSEEN")
	timed(r, "STATUS INBOX (MESSAGES UNSEEN UIDNEXT)")
	timed(r, "CREATE Archive")
	timed(r, fmt.Sprintf("UID MOVE 1:%d Archive", 10000))
	timed(r2, "NOOP")
	timed(r, fmt.Sprintf("STORE 1:%d +FLAGS.SILENT (\\Deleted)", 10000))
	timed(r, fmt.Sprintf("UID EXPUNGE 1:%d", 1<<log2))
	timed(r2, "NOOP")
	timed(r, "STATUS Archive (MESSAGES UNSEEN UIDNEXT)")
	timed(r, "RENAME INBOX Old")
	timed(r2, "NOOP")
	timed(r, "STATUS Old (MESSAGES UNSEEN UIDNEXT)")
}

// probeIMAP serves node 1 of c over IMAP.
func probeIMAP(t *testing.T, c *nodetest.Cluster) string {
	return startIMAP(t, c.Nodes[1], frontend.IMAPConfig{}, true)
}

func TestLargeMailboxProbePOP3(t *testing.T) {
	log2, _ := strconv.Atoi(os.Getenv("PM_PROBE_LOG2"))
	if log2 == 0 {
		t.Skip("PM_PROBE_LOG2 unset")
	}
	c, _, user := largeInbox(t, log2, 2000)
	cfg := pop3TestConfig()
	cfg.ServerID = c.Nodes[1].ID()
	cfg.IdleTimeout = 2 * time.Minute
	cfg.BackendTimeout = 2 * time.Minute
	_, addr := pop3Serve(t, c.Nodes[1], pop3TestAuth(c.Nodes[1], true), cfg, false)
	cl := pop3Dial(t, addr)
	cl.conn.SetDeadline(time.Now().Add(5 * time.Minute))
	t0 := time.Now()
	cl.login(user, imapPassword)
	t.Logf("login+lock %v", time.Since(t0))
	for _, cmd := range []string{"STAT", "LIST", "UIDL"} {
		t0 = time.Now()
		if err := cl.tp.PrintfLine("%s", cmd); err != nil {
			t.Fatal(err)
		}
		l, err := cl.tp.ReadLine()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		if cmd != "STAT" {
			lines, err := cl.tp.ReadDotLines()
			if err != nil {
				t.Fatal(err)
			}
			n = len(lines)
		}
		t.Logf("%-6s %v lines=%d %.40s", cmd, time.Since(t0), n, l)
	}
	t0 = time.Now()
	go func() {
		for i := 1; i <= 1<<log2; i++ {
			if err := cl.tp.PrintfLine("DELE %d", i); err != nil {
				return
			}
		}
	}()
	for i := 1; i <= 1<<log2; i++ {
		if l, err := cl.tp.ReadLine(); err != nil || l[0] != '+' {
			t.Fatalf("DELE %d: %q %v", i, l, err)
		}
	}
	t.Logf("DELE x%d %v", 1<<log2, time.Since(t0))
	t0 = time.Now()
	cl.tp.PrintfLine("QUIT")
	l, err := cl.tp.ReadLine()
	t.Logf("QUIT %v %q %v", time.Since(t0), l, err)
}

func TestLargeMailboxProbeFolders(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PM_PROBE_FOLDERS"))
	if n == 0 {
		t.Skip("PM_PROBE_FOLDERS unset")
	}
	c := nodetest.Start(t, 3)
	addr := probeIMAP(t, c)
	user := imapNewAddr(t)
	c.AddMailboxes(imapPassword, user)
	r := dialIMAPRaw(t, addr, user)
	r.wait = 300 * time.Second
	t0 := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			fmt.Fprintf(r.c, "c%d CREATE P/f%05d\r\n", i, i)
		}
	}()
	for got := 0; got < n; {
		l := r.line()
		if l[0] == 'c' {
			got++
			if got%500 == 0 {
				t.Logf("%d creates at %v", got, time.Since(t0))
			}
		}
	}
	t.Logf("CREATE x%d %v", n, time.Since(t0))
	timed := func(cmd string) []string {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		t0 := time.Now()
		u, tagged := r.cmd(cmd)
		runtime.ReadMemStats(&ms1)
		t.Logf("%-50s %10v untagged=%d alloc=%dMiB tag=%.40s", cmd, time.Since(t0), len(u), (ms1.TotalAlloc-ms0.TotalAlloc)>>20, tagged)
		return u
	}
	timed(`LIST "" "*"`)
	timed(`LIST "" "%"`)
	timed(`LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN))`)
	timed(`LSUB "" "*"`)
	timed(`STATUS P/f02500 (MESSAGES)`)
	timed(`SELECT P/f04000`)
	timed(`CREATE Q/x`)
	timed(`RENAME P Q/P`)
	timed(`LIST "" "*"`)
	timed(`DELETE Q/P/f00001`)
	timed(`DELETE Q/P`)
}

func TestLargeMailboxProbeIdle(t *testing.T) {
	log2, _ := strconv.Atoi(os.Getenv("PM_PROBE_LOG2"))
	if log2 == 0 {
		t.Skip("PM_PROBE_LOG2 unset")
	}
	c, _, user := largeInbox(t, log2, 2000)
	addr := probeIMAP(t, c)
	r := dialIMAPRaw(t, addr, user)
	r.wait = 120 * time.Second
	r.ok("SELECT INBOX")
	run := func(label string) {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		t0 := time.Now()
		for i := range 100 {
			c.Deliver(0, fmt.Sprintf("Subject: d%d\r\n\r\nx\r\n", i), user)
		}
		d1 := time.Since(t0)
		t0 = time.Now()
		_, tagged := r.cmd("STORE 1:* +FLAGS.SILENT (\\Flagged)")
		d2 := time.Since(t0)
		r.ok("STORE 1:* -FLAGS.SILENT (\\Flagged)")
		runtime.ReadMemStats(&ms1)
		t.Logf("%s: 100 deliveries %v, STORE 1:* %v (%.30s), alloc %d MiB", label, d1, d2, tagged, (ms1.TotalAlloc-ms0.TotalAlloc)>>20)
	}
	run("no idlers")
	var lines [8]int64
	for k := range 8 {
		ir := dialIMAPRaw(t, addr, user)
		ir.wait = 300 * time.Second
		ir.ok("SELECT INBOX")
		fmt.Fprintf(ir.c, "i IDLE\r\n")
		if l := ir.line(); l[0] != '+' {
			t.Fatal(l)
		}
		go func() {
			for {
				ir.c.SetReadDeadline(time.Now().Add(time.Minute))
				if _, err := ir.r.ReadString('\n'); err != nil {
					return
				}
				lines[k]++
			}
		}()
	}
	run("8 idlers")
	time.Sleep(time.Second)
	t.Logf("idler lines %v", lines)
}
