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

// checkHighWater compares each read R2 with every read R1 that completed
// before R2 began. A UID in R2 below R1's highest UID must also be in R1:
// it was not expunged by R1's time (R2 still lists it), so it was either
// assigned before R1's instant, and R1 would list it, or after, and then it
// would be above everything R1 saw. R2's UIDNEXT must exceed every UID R1
// saw and be no lower than any UIDNEXT reported before R2 began.
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
	byStart := append([]*uidRead(nil), reads...)
	sort.SliceStable(byStart, func(i, j int) bool { return byStart[i].call.Start() < byStart[j].call.Start() })
	missed := newMissedUIDs(reads)
	done := 0 // reads of byEnd whose absences are in missed
	for _, r2 := range byStart {
		u.checkOwnNext(mb, r2)
		for done < len(byEnd) && byEnd[done].call.End() < r2.call.Start() {
			missed.add(byEnd[done])
			done++
		}
		if done > 0 {
			u.checkListedAfterMiss(mb, missed, r2)
			u.checkNext(mb, best[done-1], maxNext[done-1], r2)
		}
	}
}

// missedUIDs is, for the reads added so far, every UID (among those any
// read listed) that lies below some added read's highest UID and that this
// read did not list, with the first read that missed it. Such a UID must
// never be listed by a read that begins later. Each UID is recorded once,
// and a skip list over the recorded ones keeps adding a read proportional
// to its own size.
type missedUIDs struct {
	uids []uint32       // every UID any read listed, ascending
	by   []*uidRead     // by[i]: the first added read that missed uids[i]
	skip []int          // skip[i]: towards the first unrecorded index >= i
	pos  map[uint32]int // UID -> index in uids
}

func newMissedUIDs(reads []*uidRead) *missedUIDs {
	all := map[uint32]bool{}
	for _, r := range reads {
		for uid := range r.uids {
			all[uid] = true
		}
	}
	m := &missedUIDs{uids: sortedKeys(all), pos: map[uint32]int{}}
	m.by = make([]*uidRead, len(m.uids))
	m.skip = make([]int, len(m.uids)+1)
	for i, uid := range m.uids {
		m.pos[uid] = i
		m.skip[i] = i
	}
	m.skip[len(m.uids)] = len(m.uids)
	return m
}

// next returns the first unrecorded index >= i.
func (m *missedUIDs) next(i int) int {
	root := i
	for m.skip[root] != root {
		root = m.skip[root]
	}
	for m.skip[i] != root {
		m.skip[i], i = root, m.skip[i]
	}
	return root
}

func (m *missedUIDs) add(r *uidRead) {
	limit := sort.Search(len(m.uids), func(i int) bool { return m.uids[i] >= r.maxUID })
	for i := m.next(0); i < limit; i = m.next(i + 1) {
		if !r.uids[m.uids[i]] {
			m.by[i] = r
			m.skip[i] = i + 1
		}
	}
}

// missedBy returns the read that missed uid before, or nil.
func (m *missedUIDs) missedBy(uid uint32) *uidRead {
	if i, ok := m.pos[uid]; ok {
		return m.by[i]
	}
	return nil
}

func compatible(r1, r2 *uidRead) bool {
	return r1.validity() == 0 || r2.validity() == 0 || r1.validity() == r2.validity()
}

func (u *uidChecker) checkOwnNext(mb string, r *uidRead) {
	if r.next() != 0 && r.maxUID >= r.next() {
		u.c.violation(CountUIDRegression, "op %d lists UID %d of %s but reports UIDNEXT %d",
			r.call.Complete.Index, r.maxUID, mb, r.next())
	}
}

// checkListedAfterMiss flags the first UID of r2 that an earlier,
// completed read missed although it had seen a higher UID.
func (u *uidChecker) checkListedAfterMiss(mb string, missed *missedUIDs, r2 *uidRead) {
	for _, uid := range sortedKeys(r2.uids) {
		r1 := missed.missedBy(uid)
		if r1 == nil || !compatible(r1, r2) {
			continue // a UIDVALIDITY change is reported on its own
		}
		u.c.violation(CountUIDRegression, "op %d lists UID %d of %s, below the highest UID %d of the earlier op %d, which did not list it",
			r2.call.Complete.Index, uid, mb, r1.maxUID, r1.call.Complete.Index)
		return
	}
}

// checkNext compares r2's UIDNEXT with r1, the earlier read that saw the
// highest UID, and with the highest UIDNEXT reported before r2 began.
func (u *uidChecker) checkNext(mb string, r1 *uidRead, maxNext uint32, r2 *uidRead) {
	if !compatible(r1, r2) {
		return // already reported as a UIDVALIDITY change
	}
	if next := r2.next(); next != 0 && (next <= r1.maxUID || next < maxNext) {
		u.c.violation(CountUIDRegression, "op %d reports UIDNEXT %d of %s after earlier reads saw UID %d and UIDNEXT %d",
			r2.call.Complete.Index, next, mb, r1.maxUID, maxNext)
	}
}
