package node

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"powermail/fsm"
)

// removalScene is four voters, one of them (down) stopped, and a fifth
// node (spare) that answers as a non-voter, with room for it under the
// voter cap; x is a live voter other than the leader l. No voter upkeep
// runs: the tests make its changes themselves.
type removalScene struct {
	c             *testCluster
	l, x, spare   *Node
	down          string
	spareAsServer raft.Server
	membersBefore int
}

func newRemovalScene(t *testing.T) *removalScene {
	t.Helper()
	c := newTestClusterWith(t, 3, func(cfg *Config) { cfg.VoterUpkeepInterval = time.Hour })
	l := c.leader(5 * time.Second)
	setMaxVoters(t, l, 3)
	fourth := c.start("n4", false, l.AdminAddr())
	spare := c.start("n5", false, l.AdminAddr())
	if _, nv := suffrages(t, l); !slices.Equal(nv, []string{"n4", "n5"}) {
		t.Fatalf("non-voters %v, want n4 and n5", nv)
	}
	setMaxVoters(t, l, 5)
	index, _ := l.configuration()
	if err := l.promote(index, raft.Server{ID: "n4", Address: raft.ServerAddress(fourth.ClusterAddr())}); err != nil {
		t.Fatal(err)
	}
	var voters []*Node
	for _, id := range []string{"n1", "n2", "n3", "n4"} {
		if n := c.nodes[id]; n != l {
			voters = append(voters, n)
		}
	}
	x, down := voters[0], voters[1]
	down.Close()
	delete(c.nodes, down.ID())
	waitFor(t, 10*time.Second, "the spare's member record", func() bool { m, _ := l.memberRecord("n5"); return m != nil })
	ms, err := l.State().Members()
	if err != nil {
		t.Fatal(err)
	}
	return &removalScene{c: c, l: l, x: x, spare: spare, down: down.ID(),
		spareAsServer: raft.Server{ID: "n5", Address: raft.ServerAddress(spare.ClusterAddr())}, membersBefore: len(ms)}
}

// promoteSpare promotes the spare as voter upkeep would (it answers and
// there is room), conditional on the leader's configuration now.
func (s *removalScene) promoteSpare(t *testing.T) {
	t.Helper()
	index, _ := s.l.configuration()
	if err := s.l.promote(index, s.spareAsServer); err != nil {
		t.Errorf("promote the spare: %v", err)
	}
}

// killSpare stops the spare as a crash would.
func (s *removalScene) killSpare() {
	s.spare.Kill()
	delete(s.c.nodes, s.spare.ID())
}

// assertUnchanged checks that a refused removal of x left x a voter with
// its member record, and that the cluster still commits.
func (s *removalScene) assertUnchanged(t *testing.T) {
	t.Helper()
	if v, _ := suffrages(t, s.l); !slices.Contains(v, s.x.ID()) {
		t.Fatalf("voters %v after a refused removal of %s", v, s.x.ID())
	}
	if m, err := s.l.memberRecord(s.x.ID()); err != nil || m == nil {
		t.Fatalf("member record of %s after a refused removal: %v %v", s.x.ID(), m, err)
	}
	if ms, _ := s.l.State().Members(); len(ms) != s.membersBefore {
		t.Fatalf("members after a refused removal: %+v, want %d", ms, s.membersBefore)
	}
	mustApply(t, s.l, &fsm.DomainAdd{Name: "still.example"})
}

// A removal checks the quorum on the configuration of its start, and
// its body checks can take minutes. A voter change of upkeep landing in
// between (here: a non-voter promoted, which then stops) can make the
// removal cost the quorum: four voters of five would stay, two of them
// answering. The removal is decided again on a fresh view just before
// raft's change, and refused, with the member record put back.
func TestRemovalOnAViewAVoterChangeInvalidatesIsRefused(t *testing.T) {
	s := newRemovalScene(t)
	ran := false
	s.l.afterBodyCheck = func() {
		if !ran {
			ran = true
			s.promoteSpare(t)
			s.killSpare()
		}
	}
	err := s.l.Remove(ctxT(t, 30*time.Second), s.x.ID(), false)
	if !ran {
		t.Fatal("the voter change during the removal did not run")
	}
	if !errors.Is(err, fsm.ErrInvalid) || !strings.Contains(err.Error(), "no quorum") {
		t.Fatalf("removal of a live voter once it would cost the quorum: %v", err)
	}
	s.assertUnchanged(t)
}

// The same change landing between the removal's decision on its fresh
// view and raft's change makes raft refuse the removal (it is
// conditional on that view): it is decided again on the configuration
// the change left, where it would cost the quorum, and refused.
func TestRemovalRefusedByRaftIsDecidedAgain(t *testing.T) {
	s := newRemovalScene(t)
	attempts := 0
	s.l.beforeConfigRemoval = func(raft.ServerID) {
		attempts++
		if attempts == 1 {
			s.promoteSpare(t)
			s.killSpare()
		}
	}
	err := s.l.Remove(ctxT(t, 30*time.Second), s.x.ID(), false)
	if !errors.Is(err, fsm.ErrInvalid) || !strings.Contains(err.Error(), "no quorum") {
		t.Fatalf("removal decided again once it would cost the quorum: %v (attempts %d)", err, attempts)
	}
	if attempts != 1 {
		t.Fatalf("raft's change attempted %d times, want once (the second decision refuses)", attempts)
	}
	s.assertUnchanged(t)
}

// A removal refused by raft for a change that leaves it safe (the spare
// promoted and still answering) is decided again and made.
func TestRemovalRefusedByRaftIsMadeOnAFreshView(t *testing.T) {
	s := newRemovalScene(t)
	attempts := 0
	s.l.beforeConfigRemoval = func(raft.ServerID) {
		attempts++
		if attempts == 1 {
			s.promoteSpare(t)
		}
	}
	if err := s.l.Remove(ctxT(t, 30*time.Second), s.x.ID(), false); err != nil {
		t.Fatalf("removal after a voter change that leaves it safe: %v", err)
	}
	if attempts != 2 {
		t.Fatalf("raft's change attempted %d times, want twice (refused once)", attempts)
	}
	if v, _ := suffrages(t, s.l); slices.Contains(v, s.x.ID()) || !slices.Contains(v, "n5") {
		t.Fatalf("voters %v: want n5 and not %s", v, s.x.ID())
	}
	if m, _ := s.l.memberRecord(s.x.ID()); m != nil {
		t.Fatalf("member record of the removed %s: %+v", s.x.ID(), m)
	}
	mustApply(t, s.l, &fsm.DomainAdd{Name: "after.example"})
}

// A configuration that changes under every attempt makes the removal
// fail with a temporary error, changing nothing: through the admin API
// a 503, which the CLI shows and a wiped node's leave retries.
func TestRemovalUnderAConfigurationThatKeepsChanging(t *testing.T) {
	s := newRemovalScene(t)
	attempts := 0
	s.l.beforeConfigRemoval = func(raft.ServerID) {
		attempts++
		index, _ := s.l.configuration()
		var err error
		if attempts%2 == 1 {
			err = s.l.promote(index, s.spareAsServer)
		} else {
			err = s.l.demote(index, s.spareAsServer, "test")
		}
		if err != nil {
			t.Errorf("voter change %d: %v", attempts, err)
		}
	}
	err := s.l.Remove(ctxT(t, 30*time.Second), s.x.ID(), false)
	if !errors.Is(err, ErrConfigurationChanged) || attempts != removeAttempts {
		t.Fatalf("removal under a configuration changing at every attempt: %v after %d attempts, want ErrConfigurationChanged after %d",
			err, attempts, removeAttempts)
	}
	if errorStatus(err) != 503 || errorCode(err) != "unavailable" {
		t.Fatalf("admin API answer for %v: %d %s, want 503 unavailable", err, errorStatus(err), errorCode(err))
	}
	// Forwarded from the leader, it stays what it is.
	if back := replyError(err).err(); !errors.Is(back, ErrConfigurationChanged) {
		t.Fatalf("through the cluster RPC: %v", back)
	}
	s.assertUnchanged(t)
}

// Two joins of one ID at once, one at a stale address: the stale one
// decided on a view where the ID's old server did not answer, and
// meanwhile the node joined at its new address. Removing the ID then
// would evict the live member; the removal is conditional, refused, and
// decided again on a view where the ID answers, so the join is refused.
func TestJoinReplacingOnAStaleViewDoesNotEvictALiveMember(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *Config) { cfg.VoterUpkeepInterval = time.Hour })
	l := c.leader(5 * time.Second)
	n4 := c.start("n4", false, l.AdminAddr())
	n4.Close()
	delete(c.nodes, "n4")
	var moved *Node
	hooked := false
	l.beforeConfigRemoval = func(id raft.ServerID) {
		if hooked || id != "n4" {
			return
		}
		hooked = true
		// n4 comes back at a new address and joins there (in the
		// background, through the leader, replacing its old server).
		moved = c.start("n4", false, l.AdminAddr())
		waitFor(t, 15*time.Second, "n4 at its new address", func() bool {
			for _, s := range l.raft.GetConfiguration().Configuration().Servers {
				if s.ID == "n4" && string(s.Address) == moved.ClusterAddr() {
					return true
				}
			}
			return false
		})
	}
	err := l.Join(ctxT(t, 30*time.Second), JoinRequest{ID: "n4", ClusterAddr: "127.0.0.1:1", AdminAddr: "127.0.0.1:2"})
	if !hooked {
		t.Fatal("the concurrent join did not run")
	}
	if !errors.Is(err, fsm.ErrInvalid) || !strings.Contains(err.Error(), "still answers") {
		t.Fatalf("stale join of n4: %v", err)
	}
	found := false
	for _, s := range l.raft.GetConfiguration().Configuration().Servers {
		if s.ID == "n4" {
			found = string(s.Address) == moved.ClusterAddr()
		}
	}
	if !found {
		t.Fatalf("n4 not at its live address %s: %+v", moved.ClusterAddr(), l.raft.GetConfiguration().Configuration().Servers)
	}
	waitFor(t, 10*time.Second, "n4's member record at its live address", func() bool {
		m, _ := l.memberRecord("n4")
		return m != nil && m.ClusterAddr == moved.ClusterAddr()
	})
}

// A removal refused by raft on its last attempt is put back only if the
// server is still there: the change that refused it may be another
// removal of the same node (here an operator's --force, landing just
// before the last attempt's change). Putting the member record back then
// would leave a member record for a server out of the configuration, for
// good: deliveries could list it as a replica, repair count its copies.
func TestRemovalRefusedByAnotherRemovalOfItLeavesNoRecord(t *testing.T) {
	s := newRemovalScene(t)
	attempts := 0
	s.l.beforeConfigRemoval = func(raft.ServerID) {
		attempts++
		index, _ := s.l.configuration()
		var err error
		switch {
		case attempts == removeAttempts:
			err = s.l.removeLocal(ctxT(t, 20*time.Second), s.x.ID(), true)
		case attempts%2 == 1:
			err = s.l.promote(index, s.spareAsServer)
		default:
			err = s.l.demote(index, s.spareAsServer, "test")
		}
		if err != nil {
			t.Errorf("change %d: %v", attempts, err)
		}
	}
	err := s.l.Remove(ctxT(t, 30*time.Second), s.x.ID(), false)
	if attempts != removeAttempts {
		t.Fatalf("raft's change attempted %d times, want %d", attempts, removeAttempts)
	}
	if !errors.Is(err, ErrConfigurationChanged) {
		t.Fatalf("removal whose last attempt another removal refused: %v", err)
	}
	for _, srv := range s.l.raft.GetConfiguration().Configuration().Servers {
		if string(srv.ID) == s.x.ID() {
			t.Fatalf("%s still in the configuration after its forced removal", s.x.ID())
		}
	}
	if m, err := s.l.memberRecord(s.x.ID()); err != nil || m != nil {
		t.Fatalf("member record of %s, which left the configuration: %+v %v", s.x.ID(), m, err)
	}
	mustApply(t, s.l, &fsm.DomainAdd{Name: "after.example"})
}

// raft refuses a configuration change while a leadership transfer is
// under way, before it appends anything: the node is certainly still a
// server, and the removal puts its member record back as for any other
// refusal. (The transfer here goes to the stopped voter, which lacks an
// entry, so it stays under way until it times out.)
func TestRemovalRefusedDuringALeadershipTransferKeepsTheRecord(t *testing.T) {
	s := newRemovalScene(t)
	var down raft.Server
	for _, srv := range s.l.raft.GetConfiguration().Configuration().Servers {
		if string(srv.ID) == s.down {
			down = srv
		}
	}
	transfers := 0
	s.l.beforeConfigRemoval = func(raft.ServerID) {
		transfers++
		// An entry the stopped voter lacks: the transfer waits for it
		// to catch up, in vain, until raft's election timeout.
		mustApply(t, s.l, &fsm.DomainAdd{Name: "before-transfer.example"})
		s.l.raft.LeadershipTransferToServer(down.ID, down.Address)
		time.Sleep(50 * time.Millisecond) // the leader takes the transfer up first
	}
	err := s.l.Remove(ctxT(t, 30*time.Second), s.x.ID(), false)
	if transfers != 1 || !errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		t.Fatalf("removal during a leadership transfer: %v (%d attempts)", err, transfers)
	}
	waitFor(t, 10*time.Second, "the transfer to end", func() bool { return s.l.raft.State() == raft.Leader })
	s.assertUnchanged(t)
}

// A join of a member again (same ID and address: no raft change) that
// a removal of it overtakes, between the join's look at the
// configuration and its member record, does not write the record back:
// the node is out of the configuration, and a record would make it a
// member for good. The join fails with a temporary error instead.
func TestJoinOvertakenByARemovalWritesNoRecord(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *Config) { cfg.VoterUpkeepInterval = time.Hour })
	l := c.leader(5 * time.Second)
	n4 := c.start("n4", false, l.AdminAddr())
	waitFor(t, 10*time.Second, "n4's member record", func() bool { m, _ := l.memberRecord("n4"); return m != nil })
	hooked := false
	l.beforeJoinRecord = func(id string) {
		if hooked || id != "n4" {
			return
		}
		hooked = true
		if err := l.removeLocal(ctxT(t, 20*time.Second), "n4", true); err != nil {
			t.Errorf("forced removal of n4: %v", err)
		}
	}
	err := l.Join(ctxT(t, 30*time.Second), JoinRequest{ID: "n4", ClusterAddr: n4.ClusterAddr(), AdminAddr: n4.AdminAddr()})
	if !hooked {
		t.Fatal("the removal during the join did not run")
	}
	if !errors.Is(err, ErrConfigurationChanged) {
		t.Fatalf("join overtaken by a removal: %v", err)
	}
	for _, srv := range l.raft.GetConfiguration().Configuration().Servers {
		if srv.ID == "n4" {
			t.Fatalf("n4 in the configuration after its removal: %+v", srv)
		}
	}
	if m, err := l.memberRecord("n4"); err != nil || m != nil {
		t.Fatalf("member record of n4, which left the configuration: %+v %v", m, err)
	}
}
