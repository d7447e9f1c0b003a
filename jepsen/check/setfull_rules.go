package check

import "sort"

// learn records what listing l saw: which messages were seen (by a final
// read) and the earliest time each surely existed. A listed message that
// no non-failed delivery attempted (one nobody sent, or a body read back
// as corrupt:...) is reported as unexpected and does not become known:
// later reads are not obliged to list it, so it is not also "lost".
func (s *setFull) learn(l listing) {
	for id := range l.copies {
		k := msgKey{l.mailbox(), id}
		s.seen[k] = true
		if l.final() {
			s.seenFinal[k] = true
			s.covered[k] = true
		}
		if d := s.ds[k]; d == nil || d.attempts == 0 {
			continue
		}
		if t, ok := s.known[k]; !ok || l.call.End() < t {
			s.known[k] = l.call.End()
		}
	}
}

// observe checks each message listing l saw for being unexpected,
// duplicated or a deleted message that is still visible.
func (s *setFull) observe(l listing) {
	if l.final() {
		s.finalReads++
	}
	ids := make([]string, 0, len(l.copies))
	for id := range l.copies {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		s.checkListed(l, msgKey{l.mailbox(), id}, l.copies[id])
	}
}

func (s *setFull) checkListed(l listing, k msgKey, copies int) {
	d := s.ds[k]
	op := l.call.Complete.Index
	node := l.call.Invoke.Node
	switch {
	case d == nil || d.attempts == 0:
		if s.once(CountUnexpected, k) {
			s.c.violation(CountUnexpected, "op %d on node %s listed %s, which no non-failed delivery attempted", op, node, k)
		}
		return
	case d.firstInvoke > l.call.End():
		if s.once(CountUnexpected, k) {
			s.c.violation(CountUnexpected, "op %d on node %s listed %s before its delivery was invoked", op, node, k)
		}
	}
	// Only attempts invoked before the listing ended can explain its
	// copies; a retry made later does not excuse an earlier duplicate.
	if n := d.attemptsBy(l.call.End()); l.full && copies > max(1, n) && s.once(CountDuplicated, k) {
		s.c.violation(CountDuplicated, "op %d on node %s listed %s %d times after %d delivery attempts",
			op, node, k, copies, n)
	}
	if ghost(d, s.known[k], l) {
		s.c.violation(CountStale, "op %d on node %s (began %d) still listed %s, acknowledged deleted at %d",
			op, node, l.call.Start(), k, d.delAckAt)
	}
}

// ghost reports whether l must not contain the message of d, which surely
// existed from knownAt on: it had a single delivery attempt, its one copy
// existed (acknowledged or seen) before any deletion was invoked, and a
// deletion was acknowledged before l began. The attempt may have had an
// unknown outcome: once its copy was seen, it cannot add another.
func ghost(d *delivery, knownAt int64, l listing) bool {
	return d.delAcked && d.delAckAt < l.call.Start() &&
		d.attempts == 1 && knownAt < d.delAt
}

// checkAbsences flags every message that full listing l had to contain but
// did not: lost if l is a final read, stale otherwise.
func (s *setFull) checkAbsences(l listing) {
	for _, k := range s.byMailbox[l.mailbox()] {
		t := s.known[k]
		if t >= l.call.Start() {
			continue
		}
		if d := s.ds[k]; d != nil && d.mayBeDeletedBy(l.call.End()) {
			continue
		}
		if l.final() {
			s.covered[k] = true
		}
		if l.copies[k.msgID] > 0 {
			continue
		}
		s.missing(l, k, t)
	}
}

func (s *setFull) missing(l listing, k msgKey, knownAt int64) {
	op := l.call.Complete.Index
	node := l.call.Invoke.Node
	if !l.final() {
		s.c.violation(CountStale, "op %d on node %s (began %d) missed %s, known to exist since %d",
			op, node, l.call.Start(), k, knownAt)
		return
	}
	if s.once(CountLost, k) {
		s.c.violation(CountLost, "final read op %d on node %s missed %s, known to exist since %d",
			op, node, k, knownAt)
	}
}

// tally adds the informational counts and flags never-read messages.
func (s *setFull) tally() {
	keys := make([]msgKey, 0, len(s.ds))
	for k := range s.ds {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	s.c.add("final_reads", s.finalReads)
	for _, l := range s.listings {
		if l.full {
			s.c.add("reads", 1)
		}
	}
	for _, k := range keys {
		s.tallyMessage(k, s.ds[k])
	}
}

func (s *setFull) tallyMessage(k msgKey, d *delivery) {
	if d.tried > 0 {
		s.c.add("attempted", 1)
	}
	if d.attempts == 0 {
		if d.tried > 0 {
			s.c.add("failed", 1)
		}
		return
	}
	switch {
	case d.acked:
		s.c.add("acknowledged", 1)
	case d.indefinite:
		s.c.add("indeterminate", 1)
	}
	if d.delAcked {
		s.c.add("deleted", 1)
	}
	if d.acked && s.seenFinal[k] && !s.flagged[CountLost][k] {
		s.c.add("ok", 1)
	}
	if !d.acked && d.indefinite && s.seen[k] {
		s.c.add(CountRecovered, 1)
	}
	if d.acked && !d.deleting && !s.covered[k] {
		s.c.violation(CountNeverRead, "%s was acknowledged (op %d) but no final read began after that", k, d.ackOp)
	}
}
