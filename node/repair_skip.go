package node

import (
	"slices"
	"strings"
	"time"

	"powermail/fsm"
)

// Skipping the scan. A repair round reads every body record, which at
// tens of millions of bodies is most of a core for every interval on the
// leader, even when nothing is wrong. A scan changes nothing when every
// referenced body is settled: listed on exactly R healthy members, and
// otherwise only on members that are down (a down node keeps its
// listings until it returns or is removed; see settled). A settled body can only stop
// being settled through an entry that lists it on other than R, revives
// it from no references, changes R or changes the members, and every
// such entry moves the directory's placement mark (fsm/placement.go); or
// through a member going down or coming back, or reporting no room or
// room again (a body short of R whose only possible targets are full is
// settled), which no entry records. So after a full scan that found
// every body settled, a periodic round skips the scan while all of this
// holds:
//
//   - the mark is where it was when that scan began (read before the
//     settings and the members, so that a change of either made during
//     the round moves it past);
//   - the members are the same, the same of them are down, and the same
//     of them reported no room;
//   - this node has led in the same term throughout;
//   - the scan is less than repairFullScanEvery old, or while a member
//     is down, repairDegradedScanEvery.
//
// The shorter bound while a member is down is for a writer whose view
// differs from the leader's: a node that still reaches the member the
// leader counts as down may place a copy there, on exactly R listings,
// which moves no mark.
//
// Kicked rounds (a node removed, a copy found corrupt or missing) and
// rounds an operator asks for always scan.

// repairFullScanEvery is how often a periodic round scans at the least,
// as a net under the mark.
const (
	repairFullScanEvery     = time.Hour
	repairDegradedScanEvery = 10 * time.Minute
)

// cleanScan is what a full scan saw before it began.
type cleanScan struct {
	term     uint64
	mark     uint64
	replicas int
	members  string // sorted member IDs
	down     string // sorted IDs of the members not counted healthy
	full     string // sorted IDs of the members that reported no room
	at       time.Time
}

// scanKey records what a scan starting now would be judged by. mark is
// read before anything else.
func (n *Node) scanKey(mark uint64, replicas int, live liveness) cleanScan {
	var ids, down, full []string
	for id := range live.members {
		ids = append(ids, id)
		if !live.alive[id] {
			down = append(down, id)
		}
		if live.full[id] {
			full = append(full, id)
		}
	}
	slices.Sort(ids)
	slices.Sort(down)
	slices.Sort(full)
	return cleanScan{term: n.raft.CurrentTerm(), mark: mark, replicas: replicas,
		members: strings.Join(ids, ","), down: strings.Join(down, ","), full: strings.Join(full, ","), at: time.Now()}
}

// covers reports whether the clean scan c still answers for a round
// keyed by now.
func (c *cleanScan) covers(now cleanScan) bool {
	every := repairFullScanEvery
	if now.down != "" {
		every = repairDegradedScanEvery
	}
	return c != nil && c.term == now.term && c.mark == now.mark && c.replicas == now.replicas &&
		c.members == now.members && c.down == now.down && c.full == now.full && now.at.Sub(c.at) < every
}

// settled reports whether a scan would leave rec as it is (repairBody):
// listed on exactly r healthy members and no removed node, or on more
// while a listed member is down (extras are trimmed only once every
// listed member is healthy), or on fewer when every healthy member holds
// it already or reported no room: there is nowhere to copy it until a
// member joins, comes back or reports room, and each changes the scan
// key. That last holds with a removed
// node listed too: its listing goes only with the copy that restores R
// (R=3 on three nodes, one lost and removed, leaves every body so).
func settled(live liveness, r int, rec fsm.BodyRecord) bool {
	healthy, removed := 0, false
	for _, id := range rec.Replicas {
		if live.alive[id] {
			healthy++
		} else if _, member := live.members[id]; !member {
			removed = true
		}
	}
	switch {
	case healthy < r:
		for id := range live.members {
			if live.canTake(id, rec.Replicas) {
				return false
			}
		}
		return true
	case removed:
		return false // unlisted now
	case healthy > r:
		return healthy < len(rec.Replicas)
	}
	return true
}

// canTake reports whether member id can take a copy of a body listed on
// have: it is counted healthy, lacks one, and had room when last seen.
func (l liveness) canTake(id string, have []string) bool {
	return l.alive[id] && !l.full[id] && !slices.Contains(have, id)
}
