package node

import (
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

// New SRS addresses carry eight hash characters. The four an earlier
// release minted are taken only within srsMaxAge days of the node's
// first start with long hashes, which the data directory keeps across
// restarts.
func TestSRSHashLength(t *testing.T) {
	c := newTestCluster(t, 1)
	n := c.leader(5 * time.Second)
	mustApply(t, n, &fsm.DomainAdd{Name: "example.com"})
	addr := n.srsForward("s@far.org", "example.com", false, time.Now())
	hash := strings.SplitN(addr, "=", 3)[1]
	if len(hash) != srsHashLen {
		t.Fatalf("minted %s: a hash of %d characters, want %d", addr, len(hash), srsHashLen)
	}
	short := "SRS0=" + hash[:srsShortHashLen] + addr[len("SRS0=")+srsHashLen:]
	if _, ok, err := n.srsReverse(short); !ok || err != nil {
		t.Fatalf("a short hash within the window: %v", err)
	}
	n.srsShortUntil = time.Now().Add(-time.Second)
	if _, _, err := n.srsReverse(short); err == nil {
		t.Fatal("a short hash after the window was taken")
	}
	if orig, _, err := n.srsReverse(addr); err != nil || orig != "s@far.org" {
		t.Fatalf("the long hash: %q %v", orig, err)
	}
	dir := t.TempDir()
	first, err := srsShortUntil(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	again, err := srsShortUntil(dir, time.Now().Add(48*time.Hour)) // a restart later
	if err != nil || !again.Equal(first) {
		t.Fatalf("the window moved at a restart: %v then %v (%v)", first, again, err)
	}
}
