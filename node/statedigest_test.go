package node

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"powermail/fsm"
)

// mixedWrites writes through every node: mailboxes, a forward, folders,
// flags and deliveries, so the states hold every kind of record.
func mixedWrites(t *testing.T, c *testCluster) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	for i, id := range []string{"n1", "n2", "n3", "n1", "n2", "n3"} {
		n := c.nodes[id]
		mustApply(t, n, addMailbox(fmt.Sprintf("m%d@example.com", i)))
		mustApply(t, n, &fsm.FolderCreate{Mailbox: fmt.Sprintf("m%d@example.com", i), Name: "Work"})
		body := []byte(fmt.Sprintf("Subject: %d\r\n\r\nhello %d\r\n", i, i))
		res, err := n.Deliver(ctx, Message{From: "s@elsewhere.net", Mailboxes: []string{"a@example.com", fmt.Sprintf("m%d@example.com", i)}, Received: time.Now()}, bytes.NewReader(body))
		if err != nil || len(res.Rejected) != 0 {
			t.Fatalf("deliver through %s: %+v %v", id, res, err)
		}
	}
	mustApply(t, c.nodes["n2"], &fsm.ForwardAdd{Address: "all@example.com", Targets: []string{"m0@example.com", "m1@example.com"}})
	mustApply(t, c.nodes["n3"], &fsm.FlagsStore{Mailbox: "a@example.com", Folder: "INBOX", UIDs: []fsm.UIDRange{{1, 2}}, Op: fsm.FlagsAdd, Flags: []string{`\Seen`}})
}

func TestStateCheckAllEqualAfterMixedWrites(t *testing.T) {
	c := deliveryCluster(t)
	mixedWrites(t, c)
	st, err := c.follower().CheckState(ctxT(t, 30*time.Second), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Equal || len(st.Nodes) != 3 || len(st.Differ) != 0 || len(st.Missing) != 0 {
		t.Fatalf("check: %+v", st)
	}
	for _, r := range st.Nodes {
		if r.Index != st.Index || r.SHA256 != st.Nodes[0].SHA256 || r.Keys < 20 {
			t.Fatalf("%s: %+v (entry at %d)", r.Node, r, st.Index)
		}
	}
	// A second check is of a later point: more keys (the delivery
	// records), a new digest, every node alike again.
	mustApply(t, c.nodes["n1"], addMailbox("later@example.com"))
	again, err := c.nodes["n3"].CheckState(ctxT(t, 30*time.Second), 20*time.Second)
	if err != nil || !again.Equal || again.Index <= st.Index || again.Nodes[0].SHA256 == st.Nodes[0].SHA256 {
		t.Fatalf("second check: %+v %v", again, err)
	}
}

// restartWith closes node id, runs change on its data directory while it
// is down, and starts it again at its addresses.
func (c *testCluster) restartWith(id string, change func(dataDir string)) *Node {
	c.t.Helper()
	old := c.nodes[id]
	cluster, admin := old.ClusterAddr(), old.AdminAddr()
	if err := old.Close(); err != nil {
		c.t.Fatal(err)
	}
	cfg := c.config(id, false, "")
	cfg.ClusterAddr, cfg.AdminAddr = cluster, admin
	change(cfg.DataDir)
	return c.startWith(cfg)
}

// writeStrayKey writes a key into the directory state under dataDir, as a
// corrupted disk or a bug of apply could leave one.
func writeStrayKey(t *testing.T, dataDir string) {
	t.Helper()
	dir := filepath.Join(dataDir, "fsm")
	cur, err := os.ReadFile(filepath.Join(dir, "CURRENT"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open(filepath.Join(dir, strings.TrimSpace(string(cur))), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("u\x00example.com\x00stray"), []byte(`{"address":"stray@example.com"}`), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStateCheckFindsTheCorruptedNode(t *testing.T) {
	c := deliveryCluster(t)
	mixedWrites(t, c)
	c.restartWith("n3", func(dir string) { writeStrayKey(t, dir) })
	c.leader(10 * time.Second)
	st, err := c.nodes["n1"].CheckState(ctxT(t, 30*time.Second), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st.Equal || !slices.Equal(st.Differ, []string{"n3"}) || len(st.Missing) != 0 {
		t.Fatalf("check: %+v", st)
	}
	if st.Nodes[0].SHA256 != st.Nodes[1].SHA256 || st.Nodes[2].Keys != st.Nodes[0].Keys+1 {
		t.Fatalf("reports: %+v", st.Nodes)
	}
}

func TestStateCheckReportsANodeThatIsDown(t *testing.T) {
	c := deliveryCluster(t)
	mixedWrites(t, c)
	down := c.nodes["n2"]
	if err := down.Close(); err != nil {
		t.Fatal(err)
	}
	delete(c.nodes, "n2")
	start := time.Now()
	st, err := c.leader(10*time.Second).CheckState(ctxT(t, 30*time.Second), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st.Equal || !slices.Equal(st.Missing, []string{"n2"}) || len(st.Differ) != 0 {
		t.Fatalf("check: %+v", st)
	}
	if r := st.Nodes[1]; r.Node != "n2" || r.Done || r.Error == "" {
		t.Fatalf("down node's report: %+v", r)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the check took %v, its wait is 2s", took)
	}
}

func TestStateCheckRefusedBelowEncoding9(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *Config) {
		bs := *cfg.BootstrapSettings
		bs.CommandEncoding = fsm.EncodingJSON8
		cfg.BootstrapSettings = &bs
	})
	l := c.leader(10 * time.Second)
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	_, err := c.follower().CheckState(ctxT(t, 10*time.Second), 5*time.Second)
	if !errors.Is(err, fsm.ErrInvalid) || !strings.Contains(err.Error(), "--command-encoding 9") {
		t.Fatalf("check at encoding 8: %v", err)
	}
	// Raised, the same cluster checks.
	set, err := l.State().Settings()
	if err != nil {
		t.Fatal(err)
	}
	set.CommandEncoding = fsm.EncodingJSON9
	mustApply(t, l, &fsm.SettingsSet{Settings: set})
	waitFor(t, 5*time.Second, "the raise everywhere", func() bool {
		for _, n := range c.nodes {
			if n.commandEncoding() != fsm.EncodingJSON9 {
				return false
			}
		}
		return true
	})
	st, err := c.follower().CheckState(ctxT(t, 30*time.Second), 20*time.Second)
	if err != nil || !st.Equal {
		t.Fatalf("check at encoding 9: %+v %v", st, err)
	}
}

// A member's digest is taken from that member only: a relay on the path
// that carries the poll for n3 to another member must not have that
// member's digest reported as n3's, which would hide n3's divergence.
func TestStateCheckRefusesADigestFromAnotherMember(t *testing.T) {
	c := newTestClusterWith(t, 2, nil)
	a := c.leader(5 * time.Second)
	other := c.follower()
	st, err := a.CheckState(ctxT(t, 30*time.Second), 20*time.Second)
	if err != nil || !st.Equal {
		t.Fatalf("check: %+v %v", st, err)
	}
	relay := string(redirect(t, other.advertise))
	// Control: through the relay, to the member that answers.
	if rep := a.collectDigest(ctxT(t, 5*time.Second), other.ID(), relay, st.ID); !rep.Done || rep.Error != "" {
		t.Fatalf("digest of %s through the relay: %+v", other.ID(), rep)
	}
	ctx := ctxT(t, time.Second)
	if rep := a.collectDigest(ctx, "n3", relay, st.ID); rep.Error == "" || rep.SHA256 != "" {
		t.Fatalf("n3's digest, answered by %s, taken: %+v", other.ID(), rep)
	}
}
