package check

import "sort"

// pred is a message whose UID is known to have been assigned by the time
// its only delivery attempt was acknowledged.
type pred struct {
	at  int64
	uid uint32
	key msgKey
}

// checkDeliveryOrder: if delivery A was acknowledged before delivery B was
// invoked, every copy of B must have a higher UID than A. Only messages with
// exactly one (acknowledged) attempt serve as A, so that A's UID certainly
// belongs to the acknowledged copy; every attempt of B counts, since all of
// them began after A was acknowledged.
func (u *uidChecker) checkDeliveryOrder(mb string) {
	var preds []pred
	var succs []msgKey
	for _, k := range u.keysOf[mb] {
		d := u.ds[k]
		if d == nil || d.attempts == 0 {
			continue
		}
		succs = append(succs, k)
		if d.attempts == 1 && d.acked {
			preds = append(preds, pred{at: d.ackAt, uid: minUID(u.uidsOf[k]), key: k})
		}
	}
	sort.SliceStable(preds, func(i, j int) bool { return preds[i].at < preds[j].at })
	best := prefixMax(preds)
	for _, k := range succs {
		start := u.ds[k].firstInvoke
		n := sort.Search(len(preds), func(i int) bool { return preds[i].at >= start })
		if n == 0 {
			continue
		}
		p := best[n-1]
		if got := minUID(u.uidsOf[k]); got <= p.uid {
			u.c.violation(CountUIDOrder, "%s (invoked at %d) got UID %d, not above UID %d of %s (acknowledged at %d)",
				k, start, got, p.uid, p.key, p.at)
		}
	}
}

// prefixMax returns, for each i, the pred with the highest UID in ps[:i+1].
func prefixMax(ps []pred) []pred {
	out := make([]pred, len(ps))
	for i, p := range ps {
		if i > 0 && out[i-1].uid >= p.uid {
			p = out[i-1]
		}
		out[i] = p
	}
	return out
}

// checkHighWater compares each read R2 with the read R1 that completed
// before R2 began and saw the highest UID. A UID in R2 below R1's highest
// UID must also be in R1; R2's UIDNEXT must exceed every UID R1 saw and be
// no lower than any UIDNEXT reported before R2 began.
func (u *uidChecker) checkHighWater(mb string) {
	reads := u.reads[mb]
	byEnd := append([]*uidRead(nil), reads...)
	sort.SliceStable(byEnd, func(i, j int) bool { return byEnd[i].call.End() < byEnd[j].call.End() })
	best := make([]*uidRead, len(byEnd))
	maxNext := make([]uint32, len(byEnd))
	for i, r := range byEnd {
		best[i], maxNext[i] = r, r.next()
		if i > 0 && best[i-1].maxUID >= r.maxUID {
			best[i] = best[i-1]
		}
		if i > 0 {
			maxNext[i] = max(maxNext[i], maxNext[i-1])
		}
	}
	for _, r2 := range reads {
		u.checkOwnNext(mb, r2)
		n := sort.Search(len(byEnd), func(i int) bool { return byEnd[i].call.End() >= r2.call.Start() })
		if n > 0 {
			u.compareReads(mb, best[n-1], maxNext[n-1], r2)
		}
	}
}

func (u *uidChecker) checkOwnNext(mb string, r *uidRead) {
	if r.next() != 0 && r.maxUID >= r.next() {
		u.c.violation(CountUIDRegression, "op %d lists UID %d of %s but reports UIDNEXT %d",
			r.call.Complete.Index, r.maxUID, mb, r.next())
	}
}

func (u *uidChecker) compareReads(mb string, r1 *uidRead, maxNext uint32, r2 *uidRead) {
	if r1.validity() != 0 && r2.validity() != 0 && r1.validity() != r2.validity() {
		return // already reported as a UIDVALIDITY change
	}
	op1, op2 := r1.call.Complete.Index, r2.call.Complete.Index
	for _, uid := range sortedKeys(r2.uids) {
		if uid < r1.maxUID && !r1.uids[uid] {
			u.c.violation(CountUIDRegression, "op %d lists UID %d of %s, below the highest UID %d of the earlier op %d, which did not list it",
				op2, uid, mb, r1.maxUID, op1)
			return
		}
	}
	if next := r2.next(); next != 0 && (next <= r1.maxUID || next < maxNext) {
		u.c.violation(CountUIDRegression, "op %d reports UIDNEXT %d of %s after earlier reads saw UID %d and UIDNEXT %d",
			op2, next, mb, r1.maxUID, maxNext)
	}
}
