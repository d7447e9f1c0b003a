// Package nodetest runs real PowerMail nodes inside a test process: real
// raft over loopback TCP, real Pebble in temporary directories. Protocol
// tests in other packages use it to test against a three-node cluster
// without starting binaries.
package nodetest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/node"
)

// Secret is the cluster secret of every test cluster.
var Secret = []byte("nodetest-cluster-secret-0123456789")

// Cluster is a set of nodes started by Start.
type Cluster struct {
	t     testing.TB
	dir   string
	Nodes []*node.Node // Nodes[0] bootstrapped the cluster
}

// Start bootstraps a cluster of size nodes (R=2, W=2 for size > 1, else
// 1/1) and waits until every node has joined. The nodes are closed when
// the test ends.
func Start(t testing.TB, size int) *Cluster {
	t.Helper()
	return StartWith(t, size, nil)
}

// StartWith is Start with tweak (if not nil) applied to every node's
// configuration before it starts. BootstrapSettings a tweak sets (a
// cluster at an older command encoding) are the first node's.
func StartWith(t testing.TB, size int, tweak func(*node.Config)) *Cluster {
	t.Helper()
	c := &Cluster{t: t, dir: t.TempDir()}
	t.Cleanup(c.Close)
	r := min(size, 2)
	for i := 1; i <= size; i++ {
		cfg := c.config(fmt.Sprintf("n%d", i))
		if tweak != nil {
			tweak(&cfg)
		}
		if i == 1 {
			cfg.Bootstrap = true
			if cfg.BootstrapSettings == nil { // a tweak's are kept (an older encoding)
				cfg.BootstrapSettings = &node.BootstrapSettings{Replicas: r, WriteQuorum: r}
			}
		} else {
			cfg.Join = c.Nodes[0].AdminAddr()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		n, err := node.New(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatalf("start %s: %v", cfg.ID, err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	c.waitMembers(size)
	return c
}

func (c *Cluster) config(id string) node.Config {
	out := io.Discard
	if testing.Verbose() && os.Getenv("NODETEST_LOG") != "" {
		out = os.Stderr
	}
	return node.Config{
		ID: id, DataDir: filepath.Join(c.dir, id), ClusterAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		Secret: Secret,
		Raft: node.RaftTuning{HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
			LeaderLeaseTimout: 150 * time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func (c *Cluster) waitMembers(size int) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ms, err := c.Nodes[0].State().Members()
		if err == nil && len(ms) >= size {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster has %d of %d members after 20 s", len(ms), size)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close stops every node that is still running.
func (c *Cluster) Close() {
	for _, n := range c.Nodes {
		n.Close()
	}
}

// Apply commits cmd through the first node and fails the test on error.
func (c *Cluster) Apply(cmd fsm.Command) any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := c.Nodes[0].Apply(ctx, cmd)
	if err != nil {
		c.t.Fatalf("apply %T: %v", cmd, err)
	}
	return v
}

// AddMailboxes creates the domain of each address (if needed) and a
// mailbox with the given password for each.
func (c *Cluster) AddMailboxes(password string, addrs ...string) {
	c.t.Helper()
	hash, err := fsm.HashPassword(password)
	if err != nil {
		c.t.Fatal(err)
	}
	add := &fsm.MailboxAdd{}
	for _, a := range addrs {
		p, err := fsm.ParseAddress(a)
		if err != nil {
			c.t.Fatal(err)
		}
		if _, err := c.Nodes[0].State().Domain(p.Domain); err != nil {
			c.Apply(&fsm.DomainAdd{Name: p.Domain})
		}
		add.Mailboxes = append(add.Mailboxes, fsm.NewMailbox{Address: a, PasswordHash: hash})
	}
	c.Apply(add)
}

// Deliver delivers body to mailboxes through node i, as SMTP would.
func (c *Cluster) Deliver(i int, body string, mailboxes ...string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Nodes[i].Deliver(ctx, node.Message{Mailboxes: mailboxes, Received: time.Now()}, strings.NewReader(body))
	if err != nil {
		c.t.Fatalf("deliver through %s: %v", c.Nodes[i].ID(), err)
	}
	if len(res.Rejected) > 0 {
		c.t.Fatalf("deliver through %s: rejected %v", c.Nodes[i].ID(), res.Rejected)
	}
}

// Admin sends an admin API request (a JSON body, or "") to node i with
// the cluster secret, as an administrator's tool does, and fails the test
// unless it is answered 200.
func (c *Cluster) Admin(i int, method, path, body string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.Nodes[i].AdminAddr()+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+string(Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		c.t.Fatalf("admin %s %s: %d %s %v", method, path, resp.StatusCode, raw, err)
	}
	return string(raw)
}
