package node

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"powermail/fsm"
)

// MemberStatus is one node as the cluster sees it.
type MemberStatus struct {
	ID           string `json:"id"`
	Role         string `json:"role"`     // leader, follower, candidate, unreachable
	Suffrage     string `json:"suffrage"` // voter, nonvoter
	ClusterAddr  string `json:"cluster_addr"`
	AdminAddr    string `json:"admin_addr"`
	LastContact  string `json:"last_contact,omitempty"` // since the leader was last heard; "" on the leader
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	Reachable    bool   `json:"reachable"`
	Error        string `json:"error,omitempty"`
	// Started is when the node's process started its node (a restart
	// shows as a new time).
	Started time.Time `json:"started,omitzero"`
	// Reads is the newest command encoding the node's release reads (0
	// from a release before encoding 4, which did not say).
	Reads int `json:"reads_encoding,omitempty"`
	// Body store of the node. Bodies counts the copies it holds,
	// referenced or not (until garbage collection deletes them);
	// RepairStatus.Bodies and VerifyProgress count each referenced
	// body once, whatever its copies.
	Bodies     int64  `json:"bodies"`
	BodyBytes  int64  `json:"body_bytes"`
	FreeBytes  uint64 `json:"free_bytes"`
	TotalBytes uint64 `json:"total_bytes"`
	// MinFreeBytes is the node's reserve; at or below it the node stores
	// no new bodies (storage.ErrNoSpace).
	MinFreeBytes uint64 `json:"min_free_bytes"`
	Corrupt      int64  `json:"corrupt"` // corrupt local copies found since start
	Missing      int64  `json:"missing"` // listed bodies found missing here since start (listing audit)
	// AuditPending is true until the node's first listing audit since it
	// started has finished: until then the directory may list it for
	// bodies its store lacks (a replaced disk), and a removal counts no
	// copy on it. Absent from a release before it, which is counted.
	AuditPending bool `json:"audit_pending,omitempty"`
	// Repair is the leader's redundancy view (leader only).
	Repair *RepairStatus `json:"repair,omitempty"`
}

// MarshalJSON leaves out what a node that did not answer could not tell
// (its term and indexes, its store's figures, its start), rather than
// report zeros that read as measured: a reader tells "unknown" from 0 by
// the field's absence. A node that answers has every field.
func (m MemberStatus) MarshalJSON() ([]byte, error) {
	type fields MemberStatus // the same fields, without this method
	if m.Reachable {
		return json.Marshal(fields(m))
	}
	return json.Marshal(unreachableStatus{ID: m.ID, Role: m.Role, Suffrage: m.Suffrage,
		ClusterAddr: m.ClusterAddr, AdminAddr: m.AdminAddr, Error: m.Error})
}

// unreachableStatus is what is known of a node that did not answer.
type unreachableStatus struct {
	ID          string `json:"id"`
	Role        string `json:"role"`
	Suffrage    string `json:"suffrage"`
	ClusterAddr string `json:"cluster_addr"`
	AdminAddr   string `json:"admin_addr"`
	Reachable   bool   `json:"reachable"` // always false
	Error       string `json:"error,omitempty"`
}

// ClusterStatus is the cluster as one node sees it.
type ClusterStatus struct {
	Leader string         `json:"leader"`
	Health string         `json:"health"` // healthy, degraded, unavailable
	Nodes  []MemberStatus `json:"nodes"`
	// Self is the ID of the node that answered.
	Self string `json:"self"`
	// Removed says the node that answered is no longer a member: the
	// cluster's configuration, which it holds, leaves it out (it was
	// removed while it ran). It follows no leader then, so Leader and
	// Health are the members' as they answer, and Nodes lists only them.
	Removed bool `json:"removed"`
	// Redundancy is the leader's last repair round and its counters.
	Redundancy *RepairStatus `json:"redundancy,omitempty"`
}

// localStats describes this node from its own point of view.
func (n *Node) localStats() MemberStatus {
	st := n.raft.State()
	ms := MemberStatus{
		ID:           n.cfg.ID,
		Role:         strings.ToLower(st.String()),
		ClusterAddr:  n.advertise,
		AdminAddr:    n.adminAdvertise(),
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.state.Applied(),
		Reachable:    true,
		Started:      n.started,
		Reads:        fsm.NewestEncoding,
	}
	if st, err := n.bodies.Stats(context.Background()); err == nil {
		ms.Bodies, ms.BodyBytes, ms.FreeBytes, ms.TotalBytes = st.Bodies, st.BodyBytes, st.FSAvail, st.FSTotal
		ms.MinFreeBytes = st.MinFree
	}
	ms.Corrupt, ms.Missing = n.corrupt.Load(), n.missing.Load()
	ms.AuditPending = !n.audited.Load()
	if st == raft.Leader {
		r := n.repair.get()
		ms.Repair = &r
	}
	if st != raft.Leader {
		if lc := n.raft.LastContact(); !lc.IsZero() {
			ms.LastContact = time.Since(lc).Round(time.Millisecond).String()
		} else {
			ms.LastContact = "never"
		}
	}
	return ms
}

// Status asks every member for its view, concurrently and with a short
// timeout, so an unreachable node shows as such instead of stalling.
func (n *Node) Status(ctx context.Context) (ClusterStatus, error) {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return ClusterStatus{}, err
	}
	admin := map[string]string{}
	if members, err := n.state.Members(); err == nil {
		for _, m := range members {
			admin[m.ID] = m.AdminAddr
		}
	}
	servers := cf.Configuration().Servers
	out := ClusterStatus{Leader: n.LeaderID(), Nodes: make([]MemberStatus, len(servers)), Self: n.cfg.ID, Removed: n.leftOut(servers)}
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out.Nodes[i] = n.memberStatus(ctx, s, admin[string(s.ID)])
		}()
	}
	wg.Wait()
	for _, m := range out.Nodes {
		if m.Repair != nil {
			out.Redundancy = m.Repair
		}
	}
	if out.Removed {
		out.Leader = membersLeader(out.Nodes)
	}
	out.Health = health(out)
	return out, nil
}

// leftOut reports whether servers, a configuration this node holds, lists
// others but not this node: it was removed while it ran. An empty one is
// that of a node not joined yet.
func (n *Node) leftOut(servers []raft.Server) bool {
	return len(servers) > 0 && !slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == n.cfg.ID })
}

// membersLeader is the leader as the members answer: the one that says
// it leads, in the newest term should two say so.
func membersLeader(nodes []MemberStatus) string {
	var leader string
	var term uint64
	for _, m := range nodes {
		if m.Reachable && m.Role == "leader" && m.Term >= term {
			leader, term = m.ID, m.Term
		}
	}
	return leader
}

func (n *Node) memberStatus(ctx context.Context, s raft.Server, adminAddr string) MemberStatus {
	var ms MemberStatus
	if string(s.ID) == n.cfg.ID {
		ms = n.localStats()
	} else {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := n.call(cctx, string(s.Address), "GET", "/rpc/stats", nil, &ms); err != nil {
			ms = MemberStatus{ID: string(s.ID), Role: "unreachable", AdminAddr: adminAddr, Error: err.Error()}
		}
	}
	ms.ClusterAddr = string(s.Address)
	ms.Suffrage = "voter"
	if s.Suffrage != raft.Voter {
		ms.Suffrage = "nonvoter"
	}
	return ms
}

// Full reports whether the node was at its free-space reserve: it refuses
// new bodies, so deliveries through it get 452 4.3.1.
func (m MemberStatus) Full() bool {
	return m.Reachable && m.MinFreeBytes > 0 && m.FreeBytes <= m.MinFreeBytes
}

// health is "healthy" with every node reachable (a non-voter holds
// replicas and serves clients too) and none at its free-space reserve,
// "degraded" while a majority of voters is reachable, and "unavailable"
// otherwise.
func health(cs ClusterStatus) string {
	if cs.Leader == "" {
		return "unavailable"
	}
	voters, up, full, allUp := 0, 0, false, true
	for _, m := range cs.Nodes {
		full = full || m.Full()
		allUp = allUp && m.Reachable
		if m.Suffrage == "voter" {
			voters++
			if m.Reachable {
				up++
			}
		}
	}
	switch {
	case allUp && !full:
		return "healthy"
	case up > voters/2:
		return "degraded"
	}
	return "unavailable"
}
