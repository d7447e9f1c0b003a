package node

import (
	"cmp"
	"context"
	"slices"
)

// Rebalance's measure. Evening out body bytes suits members whose disks
// are the same size; where they differ, it fills the smallest disk to its
// reserve (and that node then refuses deliveries, 452) while the larger
// ones stand half empty, against placement, which weighs members by
// their room. So where the members' filesystems differ in size, rebalance
// evens out the share each member's bodies take of what it could hold of
// them (its body bytes plus its room above the reserve), and moves bodies
// from the member with the largest share to the one with the smallest.
//
// The share means nothing where members share a filesystem (tests, `make
// run`, several nodes on one host): a move frees nothing on the one and
// takes nothing from the other, and a member with a larger reserve looks
// fuller however few bodies it holds, so rebalance would move bodies for
// ever. Such members report the same filesystem size. So the share is used
// only when every live member's figures are known and not all of them
// report the same size; otherwise (one filesystem, disks of one size,
// where even bytes come to the same thing, or a member not polled yet)
// rebalance evens out bytes. Members on one host beside others elsewhere
// still see their shares judged apart: a move between two of them is
// wasted, though each still goes from a larger share to a smaller one.
//
// The share is approximate: body bytes are logical (before compression)
// and room is the filesystem's, which also holds the raft log and index.

// memberLoad is what rebalance knows of a live member's store: its body
// bytes, its room for new bodies above its reserve, and its filesystem's
// size, as last seen (known is false for a peer never polled).
type memberLoad struct {
	id    string
	used  int64
	room  uint64
	total uint64
	known bool
}

// capacity is what the member could hold of bodies: what it holds, and
// its room.
func (l memberLoad) capacity() float64 { return float64(l.used) + float64(l.room) }

// share is the part of its capacity that its bodies take.
func (l memberLoad) share() float64 {
	if c := l.capacity(); c > 0 {
		return float64(l.used) / c
	}
	return 0
}

// rebalancePlan is a round's rebalance: move about amount body bytes from
// one member to another.
type rebalancePlan struct {
	from, to string
	amount   int64
}

// memberLoads reads the load of each of ids.
func (n *Node) memberLoads(ids []string) []memberLoad {
	out := make([]memberLoad, 0, len(ids))
	for _, id := range ids {
		l := memberLoad{id: id}
		if id == n.cfg.ID {
			st, err := n.bodies.Stats(context.Background())
			l.used, l.room, l.total, l.known = st.BodyBytes, st.Room(), st.FSTotal, err == nil
		} else if st, ok := n.placement.get(id); ok {
			l.used, l.room, l.total, l.known = st.BodyBytes, st.Room(), st.FSTotal, true
		}
		out = append(out, l)
	}
	return out
}

// planRebalance chooses the fullest member (by share or by bytes: see
// above) and the emptiest one with room, and how much to move between
// them so that they meet; false when they are within spread ((max-min)/max)
// of each other already, or nothing can move.
func planRebalance(loads []memberLoad, spread float64) (rebalancePlan, bool) {
	if len(loads) < 2 {
		return rebalancePlan{}, false
	}
	byShare := differentDisks(loads)
	measure := func(l memberLoad) float64 {
		if byShare {
			return l.share()
		}
		return float64(l.used)
	}
	sorted := slices.Clone(loads)
	slices.SortStableFunc(sorted, func(a, b memberLoad) int { return cmp.Compare(measure(b), measure(a)) })
	from := sorted[0]
	// A member at its reserve (or not polled yet) refuses every copy: as
	// the destination it would stop each round at its first move, and the
	// others would never be balanced.
	var to memberLoad
	for _, l := range slices.Backward(sorted[1:]) {
		if l.room > 0 {
			to = l
			break
		}
	}
	hi, lo := measure(from), measure(to)
	if to.id == "" || hi == 0 || hi-lo <= spread*hi {
		return rebalancePlan{}, false
	}
	amount := (from.used - to.used) / 2
	if byShare {
		// Moving x bytes leaves each capacity as it is: the shares meet
		// at (used_from-x)/cap_from = (used_to+x)/cap_to.
		cf, ct := from.capacity(), to.capacity()
		amount = int64((hi - lo) * cf * ct / (cf + ct))
	}
	// No more than the destination has room for: it would refuse the
	// rest, and the round would stop at the first refusal.
	amount = min(amount, int64(min(to.room, 1<<62)))
	if amount <= 0 {
		return rebalancePlan{}, false
	}
	return rebalancePlan{from: from.id, to: to.id, amount: amount}, true
}

// differentDisks reports whether every member's figures are known and
// not every member reports the same filesystem size.
func differentDisks(loads []memberLoad) bool {
	for _, l := range loads {
		if !l.known || l.total == 0 {
			return false
		}
	}
	return slices.ContainsFunc(loads, func(l memberLoad) bool { return l.total != loads[0].total })
}
