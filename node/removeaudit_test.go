package node

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"powermail/fsm"
	"powermail/storage"
)

// TestRemoveDoesNotCountAReplicaBeforeItsAudit: a body is listed on two
// followers, and one of them comes back with an empty body store (a
// replaced disk; or wiped and joined again). Until its listing audit has
// run, the directory still lists it as a replica, and it answers probes.
// Removing the other follower then must be refused: its copy is the
// body's only one, and the removal would lose an acknowledged message.
func TestRemoveDoesNotCountAReplicaBeforeItsAudit(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	ctx := ctxT(t, 60*time.Second)
	fs := c.followers(l)
	wiped, other := fs[0], fs[1]
	body := []byte("Subject: one real copy\r\n\r\nafter a disk was replaced\r\n")
	var h storage.Hash
	for _, f := range fs {
		var err error
		if h, _, err = f.bodies.Put(ctx, bytes.NewReader(body), nil); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(t, l, &fsm.Deliver{ID: "audit-pending", Hash: h.String(), Size: int64(len(body)),
		Replicas: []string{wiped.ID(), other.ID()}, Mailboxes: []string{"a@example.com"}, InternalDate: time.Now().UnixMilli()})

	cfg := wiped.cfg
	wiped.Close()
	delete(c.nodes, cfg.ID)
	if err := os.RemoveAll(filepath.Join(cfg.DataDir, "bodies")); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	cfg.auditHold = hold
	back := c.startWith(cfg)
	waitFor(t, 10*time.Second, "the restarted node to answer", func() bool {
		ms, ok := l.probeMember(ctx, raft.ServerAddress(back.advertise))
		return ok && ms.ID == back.ID() && l.removalKeepsQuorum(ctx, other.ID()) == nil
	})

	err := l.Remove(ctx, other.ID(), false)
	if !errors.Is(err, fsm.ErrInvalid) || !strings.Contains(err.Error(), "only") {
		t.Fatalf("removing %s, whose copy is the only one while %s has not audited its new store: %v", other.ID(), back.ID(), err)
	}
	close(hold)
	// The audit unlists the lost copy; a repair round may then choose the
	// restarted node for the new copy, so what must hold is that every
	// node listed has the body, not that the restarted one is unlisted.
	waitFor(t, 30*time.Second, "the audit to unlist the lost copy", func() bool {
		b, err := l.State().Body(h.String())
		return err == nil && (!slices.Contains(b.Replicas, back.ID()) || back.bodies.Verify(ctx, h) == nil)
	})
	if err := other.bodies.Verify(ctx, h); err != nil {
		t.Fatal(err)
	}
}
