package check

import (
	"sort"
)

// Set-full count names.
const (
	CountLost       = "lost"
	CountDuplicated = "duplicated"
	CountStale      = "stale"
	CountUnexpected = "unexpected"
	CountNeverRead  = "never_read"
	CountRecovered  = "recovered"
)

// listing is what one read (full) or one pop-retr or fetch (partial)
// returned.
type listing struct {
	call   Call
	full   bool
	copies map[string]int // message ID -> copies listed
}

func (l listing) mailbox() string { return l.call.Invoke.Key }
func (l listing) final() bool {
	return l.full && (l.call.Invoke.Final || l.call.Complete.Final)
}

// setFull is the working state of one CheckSetFull run.
type setFull struct {
	c          *collector
	ds         map[msgKey]*delivery
	listings   []listing
	known      map[msgKey]int64 // earliest time the message surely existed
	byMailbox  map[string][]msgKey
	seen       map[msgKey]bool
	seenFinal  map[msgKey]bool
	covered    map[msgKey]bool // some final read was obliged to list it
	flagged    map[string]map[msgKey]bool
	finalReads int
}

// CheckSetFull checks that acknowledged deliveries are never lost, that reads
// see every message known before they began, and that nothing is duplicated
// or invented. See the package documentation for the exact rules.
func CheckSetFull(h History, opts Options) Result {
	calls, err := Pair(h)
	if err != nil {
		return malformed(NameSetFull, err)
	}
	s := &setFull{
		c: newCollector(NameSetFull, opts,
			CountLost, CountDuplicated, CountStale, CountUnexpected, CountNeverRead, CountRecovered,
			"attempted", "failed", "acknowledged", "indeterminate", "deleted", "ok", "reads", "final_reads"),
		ds:        indexDeliveries(calls),
		listings:  listings(calls),
		known:     map[msgKey]int64{},
		seen:      map[msgKey]bool{},
		seenFinal: map[msgKey]bool{},
		covered:   map[msgKey]bool{},
		flagged:   map[string]map[msgKey]bool{},
	}
	s.initKnown()
	// Learn from every listing before judging any: whether a listing may
	// still show a deleted message depends on when the message was first
	// seen, possibly by a listing invoked later.
	for _, l := range s.listings {
		s.learn(l)
	}
	for _, l := range s.listings {
		s.observe(l)
	}
	s.indexMailboxes()
	for _, l := range s.listings {
		if l.full {
			s.checkAbsences(l)
		}
	}
	s.tally()
	return s.c.result()
}

func listings(calls []Call) []listing {
	var out []listing
	for _, c := range calls {
		if c.Type() != OK {
			continue
		}
		switch c.Invoke.F {
		case FRead:
			copies := map[string]int{}
			for _, m := range c.Complete.Messages {
				copies[m.MsgID]++
			}
			out = append(out, listing{call: c, full: true, copies: copies})
		case FPopRetr, FFetch:
			id := c.Complete.MsgID
			if id == "" {
				id = c.Invoke.MsgID
			}
			out = append(out, listing{call: c, copies: map[string]int{id: 1}})
		}
	}
	return out
}

func (s *setFull) initKnown() {
	for k, d := range s.ds {
		if d.acked {
			s.known[k] = d.ackAt
		}
	}
}

// once reports whether this is the first time k is flagged under count.
func (s *setFull) once(count string, k msgKey) bool {
	m := s.flagged[count]
	if m == nil {
		m = map[msgKey]bool{}
		s.flagged[count] = m
	}
	if m[k] {
		return false
	}
	m[k] = true
	return true
}

func (s *setFull) indexMailboxes() {
	s.byMailbox = map[string][]msgKey{}
	for k := range s.known {
		s.byMailbox[k.mailbox] = append(s.byMailbox[k.mailbox], k)
	}
	for _, ks := range s.byMailbox {
		sort.Slice(ks, func(i, j int) bool { return ks[i].msgID < ks[j].msgID })
	}
}
