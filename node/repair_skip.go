package node

import (
	"slices"
	"strings"
	"time"
)

// Skipping the scan. A repair round reads every body record, which at
// tens of millions of bodies is most of a core for every interval on the
// leader, even when nothing is wrong. In a healthy cluster, a body can
// only need work if an entry wrote it on other than R listed replicas,
// revived it from no references, changed R or changed the members, and
// every such entry moves the directory's placement mark
// (fsm/placement.go). So after a full scan that found every referenced
// body listed on exactly R healthy members (not merely none short: an
// extra copy left untrimmed is also work), a periodic round skips the
// scan while all of this holds:
//
//   - the mark is where it was when that scan began (read before the
//     settings and the members, so that a change of either made during
//     the round moves it past);
//   - the same members are all healthy, now as then (a node down past
//     the grace, or removed, makes its bodies short without any entry);
//   - this node has led in the same term throughout;
//   - the scan is less than repairFullScanEvery old.
//
// Kicked rounds (a node removed, a copy found corrupt or missing) and
// rounds an operator asks for always scan.

// repairFullScanEvery is how often a periodic round scans at the least,
// as a net under the mark.
const repairFullScanEvery = time.Hour

// cleanScan is what a full scan saw before it began.
type cleanScan struct {
	term     uint64
	mark     uint64
	replicas int
	members  string // sorted member IDs
	at       time.Time
}

// scanKey records what a scan starting now would be judged by, and
// whether every member is healthy. mark is read before anything else.
func (n *Node) scanKey(mark uint64, replicas int, live liveness) (cleanScan, bool) {
	healthy := true
	ids := make([]string, 0, len(live.members))
	for id := range live.members {
		healthy = healthy && live.alive[id]
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return cleanScan{term: n.raft.CurrentTerm(), mark: mark, replicas: replicas, members: strings.Join(ids, ","), at: time.Now()}, healthy
}

// covers reports whether the clean scan c still answers for a round
// keyed by now.
func (c *cleanScan) covers(now cleanScan, healthy bool) bool {
	return c != nil && healthy && c.term == now.term && c.mark == now.mark && c.replicas == now.replicas &&
		c.members == now.members && now.at.Sub(c.at) < repairFullScanEvery
}
