package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

// twoCopiesOnFollowers stores each body on both followers of a
// three-node cluster (R=2) and lists it there, as a delivery would; it
// returns the followers and the hashes, once both followers count for a
// removal (they answer and have audited their stores).
func twoCopiesOnFollowers(t *testing.T, c *testCluster, l *Node, bodies ...string) (a, b *Node, hashes []storage.Hash) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	fs := c.followers(l)
	a, b = fs[0], fs[1]
	for i, body := range bodies {
		var h storage.Hash
		for _, f := range fs {
			var err error
			if h, _, err = f.bodies.Put(ctx, strings.NewReader(body), nil); err != nil {
				t.Fatal(err)
			}
		}
		mustApply(t, l, &fsm.Deliver{ID: fmt.Sprintf("two-copies-%d", i), Hash: h.String(), Size: int64(len(body)),
			Replicas: []string{a.ID(), b.ID()}, Mailboxes: []string{"a@example.com"}, InternalDate: time.Now().UnixMilli()})
		hashes = append(hashes, h)
	}
	waitFor(t, 10*time.Second, "both followers to count for a removal", func() bool {
		up, err := l.answeringMembers(ctx, "")
		return err == nil && up[a.ID()] && up[b.ID()]
	})
	return a, b, hashes
}

// goodCopyOnAMember reports whether a member other than gone is listed
// for h and holds a copy of it that verifies.
func goodCopyOnAMember(ctx context.Context, c *testCluster, l *Node, h storage.Hash, gone string) (bool, []string) {
	l.Barrier(ctx)
	rec, err := l.State().Body(h.String())
	if err != nil {
		return false, nil
	}
	for _, id := range rec.Replicas {
		if n := c.nodes[id]; id != gone && n != nil && n.bodies.Verify(ctx, h) == nil {
			return true, rec.Replicas
		}
	}
	return false, rec.Replicas
}

// TestRemoveDoesNotCountACopyThatDoesNotVerify: a body is listed on A
// and B, but B's copy is silently corrupt (one body) or silently gone
// (another), and neither the scrub nor B's audit has noticed yet.
// Counting listings, a removal of A passed and took the only good copy
// with it. The removal now reads the other copies back; finding none
// that verifies while A still answers, it copies A's to another member
// first (as repair does), so the body survives the removal.
func TestRemoveDoesNotCountACopyThatDoesNotVerify(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	ctx := ctxT(t, 60*time.Second)
	a, b, hashes := twoCopiesOnFollowers(t, c, l,
		"Subject: corrupt on B\r\n\r\n"+strings.Repeat("c", 3000)+"\r\n",
		"Subject: missing on B\r\n\r\n"+strings.Repeat("m", 3000)+"\r\n")
	if err := b.bodies.Damage(ctx, hashes[0]); err != nil {
		t.Fatal(err)
	}
	if err := b.bodies.Delete(ctx, hashes[1]); err != nil {
		t.Fatal(err)
	}

	if err := l.Remove(ctx, a.ID(), false); err != nil {
		t.Fatalf("removing %s, which answers and holds good copies: %v", a.ID(), err)
	}
	for _, h := range hashes {
		if ok, replicas := goodCopyOnAMember(ctx, c, l, h, a.ID()); !ok {
			t.Fatalf("after removing %s, body %s (listed on %v) has no copy on a member that verifies: lost", a.ID(), h, replicas)
		}
	}
}

// TestRemoveRefusesWhenTheOnlyGoodCopyIsOnADownNode: as above, but A
// does not answer, so its copy cannot be copied first. The removal is
// refused, naming how many bodies and one of them, and A stays a member
// (its copy is repaired from it if it comes back).
func TestRemoveRefusesWhenTheOnlyGoodCopyIsOnADownNode(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	ctx := ctxT(t, 60*time.Second)
	a, b, hashes := twoCopiesOnFollowers(t, c, l, "Subject: corrupt on B\r\n\r\n"+strings.Repeat("c", 3000)+"\r\n")
	if err := b.bodies.Damage(ctx, hashes[0]); err != nil {
		t.Fatal(err)
	}
	a.Close()
	delete(c.nodes, a.ID())

	err := l.Remove(ctx, a.ID(), false)
	if !errors.Is(err, fsm.ErrInvalid) || !strings.Contains(err.Error(), "1 bodies") || !strings.Contains(err.Error(), hashes[0].String()) {
		t.Fatalf("removing %s, the down holder of the only good copy: %v", a.ID(), err)
	}
	if m, _ := l.memberRecord(a.ID()); m == nil {
		t.Fatalf("%s is no member after a refused removal", a.ID())
	}
	rec, err := l.State().Body(hashes[0].String())
	if err != nil || !slices.Contains(rec.Replicas, a.ID()) {
		t.Fatalf("body record after a refused removal: %+v %v", rec, err)
	}
}

// TestVerifiedCopiesLookup: the second look finds what the first
// verified, by the member that verified, and nothing else.
func TestVerifiedCopiesLookup(t *testing.T) {
	var v verifiedCopies
	hashes := make([]string, 50)
	for i := range hashes {
		hashes[i] = storage.HashBytes([]byte(fmt.Sprint(i))).String()
		v.add(hashes[i], fmt.Sprintf("n%d", i%3))
	}
	v.sort()
	for i, h := range hashes {
		if who, ok := v.lookup(h); !ok || who != fmt.Sprintf("n%d", i%3) {
			t.Fatalf("lookup %s: %q %v", h, who, ok)
		}
	}
	if who, ok := v.lookup(storage.HashBytes([]byte("other")).String()); ok {
		t.Fatalf("a body never verified found on %s", who)
	}
	var none *verifiedCopies
	if _, ok := none.lookup(hashes[0]); ok {
		t.Fatal("the first look has no findings to look up")
	}
}
