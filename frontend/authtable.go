package frontend

import "time"

// throttleTable holds what the Authenticator remembers of IPs, accounts
// and (IP, account) pairs, at most max records but for those with
// attempts in their line (there are at most as many as connections).
//
// When it is full, a new record evicts the least useful one: a record
// forgotten (Forget) if one is at the front of its list, else the
// oldest pass, else the oldest of the records that earned the least
// delay. Records with failures (or a pass) and nobody in line stand in
// one list per delay level (failure count, capped where the delay
// reaches MaxDelay; passes below the first), in the order they last
// failed, logged in or left their line; records in line are in no list
// and are never evicted. So a flood of junk keys, each failed once,
// evicts passes and junk of its own level and leaves alone a guessing
// run's records, which have earned more; a pass lost costs its client
// only the account's delay. Every operation costs O(levels), amortized:
// a record evicted beyond the one an add makes room for was added past
// max while every other was in a line, and leaving the line trims the
// table back to max (trim). Before, a full table dropped half of its
// records in map order, and with them, as likely as any, the
// guesser's. A caller holds Authenticator.mu.
type throttleTable struct {
	max    int
	forget time.Duration
	m      map[string]*failure
	levels []failList // levels[0]: passes; levels[i]: failure count i (the last: or more)
}

// failList is a doubly linked list of records, oldest first.
type failList struct {
	head, tail *failure
}

func newThrottleTable(cfg AuthConfig) *throttleTable {
	// Past this many failures the delay is MaxDelay: more earn nothing.
	top := 1
	for d := cfg.FailureDelay; d < cfg.MaxDelay && top < 64; d *= 2 {
		top++
	}
	return &throttleTable{max: cfg.MaxTracked, forget: cfg.Forget, m: map[string]*failure{}, levels: make([]failList, 1+top)}
}

// len is the number of records.
func (t *throttleTable) len() int { return len(t.m) }

// get returns key's record, or nil if there is none. Failures and
// passes older than Forget are forgotten: the record is dropped, or
// only its count if attempts are in its line.
func (t *throttleTable) get(key string, now time.Time) *failure {
	f := t.m[key]
	if f == nil || f.count == 0 && !f.pass || !t.expired(f, now) {
		return f
	}
	if f.inLine > 0 {
		f.count, f.pass = 0, false
		return f
	}
	t.remove(f)
	return nil
}

// expired reports whether f's failures (or pass) are forgotten at now.
func (t *throttleTable) expired(f *failure, now time.Time) bool {
	return now.Sub(f.last) > t.forget
}

// add adds an empty record for key, evicting first until the table is
// below max (or nothing is left to evict). The caller counts a failure
// in it or puts an attempt in its line.
func (t *throttleTable) add(key string, now time.Time) *failure {
	for len(t.m) >= t.max && t.evict(now) {
	}
	f := &failure{key: key, level: -1}
	t.m[key] = f
	return f
}

// trim evicts records while there are more than max, once attempts have
// left their lines: records added while every other was in a line took
// the table past max, and without this it would stay there, an add
// evicting only one record for the one it adds.
func (t *throttleTable) trim(now time.Time) {
	for len(t.m) > t.max && t.evict(now) {
	}
}

// evict drops the forgotten records at the fronts of the lists; if none
// was, the oldest record of the lowest level. It reports whether it
// dropped any: with every record in a line, it drops nothing.
func (t *throttleTable) evict(now time.Time) bool {
	dropped := false
	for i := range t.levels {
		for f := t.levels[i].head; f != nil && t.expired(f, now); f = t.levels[i].head {
			t.remove(f)
			dropped = true
		}
	}
	if dropped {
		return true
	}
	for i := range t.levels {
		if f := t.levels[i].head; f != nil {
			t.remove(f)
			return true
		}
	}
	return false
}

// remove drops f from the table.
func (t *throttleTable) remove(f *failure) {
	t.unlist(f)
	if t.m[f.key] == f {
		delete(t.m, f.key)
	}
}

// touch puts f at the back of the list of its level after its count,
// pass or line changed, or in no list while attempts are in its line. A
// record with neither failures, pass nor attempts is dropped.
func (t *throttleTable) touch(f *failure) {
	t.unlist(f)
	switch {
	case f.inLine > 0:
	case f.count <= 0 && !f.pass:
		f.count = 0
		t.remove(f)
	default:
		f.level = min(max(f.count, 0), len(t.levels)-1)
		l := &t.levels[f.level]
		f.prev, f.next = l.tail, nil
		if l.tail != nil {
			l.tail.next = f
		} else {
			l.head = f
		}
		l.tail = f
	}
}

// unlist takes f out of its list, if it is in one.
func (t *throttleTable) unlist(f *failure) {
	if f.level < 0 {
		return
	}
	l := &t.levels[f.level]
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		l.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else {
		l.tail = f.prev
	}
	f.prev, f.next, f.level = nil, nil, -1
}
