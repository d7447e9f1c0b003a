package fsm

import "sync"

// ExpansionMemo keeps the expansions of forwards that the lookups of one
// mail transaction made (State.ResolveIn), so that the forward one RCPT
// landed on is not expanded again by the next: a sender who names a list
// of 10,000 mailboxes under 1,000 sub-addresses (all+1@, all+2@, ...)
// made the node expand the list 1,000 times, 30-45 s of a core
// (BenchmarkResolveSubaddressRcpts). It is keyed by the address the
// forward is stored at, so every spelling that lands on the forward
// (sub-addresses, case, the domain's catch-all) shares it. A lookup
// keeps the expansion of the forward it lands on only; it takes a kept
// expansion wherever it meets that forward, and expands the forwards
// below in one resolution, each address once (resolution.forwardTargets).
//
// A forward's expansion depends on the directory only (its targets,
// the records below them), not on the address it was reached by nor
// on the depth it was reached at: what is kept is what expanding it
// added (its mailboxes, outside targets, full and being-removed
// mailboxes, in the order first met), how many levels it went below
// the forward, and whether none of its targets exists. Reused deeper
// than it was made, an expansion that would go past the depth limit
// answers as a fresh one does (resolution.forwardTargets).
//
// Entries are made from the state as a lookup read it. A later lookup
// of the transaction may run on a newer state; it reuses them, as the
// transaction keeps what its earlier RCPTs resolved to. A lookup that
// confirms a refusal after a read barrier (node.Resolve) uses only the
// entries made by such lookups, so that each forward is confirmed on
// fresh state once per transaction.
//
// It holds at most maxMemoAddresses addresses over its entries; an
// expansion that would pass that is used by the lookup that made it
// and not kept. It is safe for concurrent use: one lookup holds it at
// a time.
type ExpansionMemo struct {
	mu      sync.Mutex
	entries map[string]*memoEntry
	held    int
	// room is the most addresses held: maxMemoAddresses (tests set
	// less).
	room  int
	reads int
}

// maxMemoAddresses bounds the addresses one memo holds: a list of
// MaxDeliverMailboxes held with its sub-lists, twice over.
const maxMemoAddresses = 4 * MaxDeliverMailboxes

// memoEntry is one forward's expansion.
type memoEntry struct {
	// lists are what the expansion added, each in first-met order;
	// shared, never changed once the entry is made.
	lists Resolution
	// height is how many levels the expansion entered below the
	// forward's own level.
	height int
	// gone: none of the forward's targets exists (its lookup is
	// unknown unless it keeps a copy).
	gone bool
	// confirmed: made by a lookup that runs after a read barrier.
	confirmed bool
}

func (e *memoEntry) size() int {
	return len(e.lists.Mailboxes) + len(e.lists.External) + len(e.lists.OverQuota) + len(e.lists.Removing)
}

// NewExpansionMemo returns an empty memo for one transaction.
func NewExpansionMemo() *ExpansionMemo {
	return &ExpansionMemo{entries: map[string]*memoEntry{}, room: maxMemoAddresses}
}

// Reads is how many exact lookups (records looked up under one
// address) the lookups made with m have made so far.
func (m *ExpansionMemo) Reads() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads
}

// memoUse is a memo as one lookup uses it.
type memoUse struct {
	m *ExpansionMemo
	// confirm: the lookup confirms on fresh state; only entries made so
	// are reused, and the entries it makes are marked so.
	confirm bool
}

// get returns the entry kept for the forward stored at key, if this
// lookup may reuse it.
func (u memoUse) get(key string) (*memoEntry, bool) {
	e, ok := u.m.entries[key]
	if !ok || u.confirm && !e.confirmed {
		return nil, false
	}
	return e, true
}

// put keeps e for the forward stored at key, if the memo has room.
func (u memoUse) put(key string, e *memoEntry) {
	e.confirmed = u.confirm
	old := u.m.entries[key]
	held := u.m.held + e.size()
	if old != nil {
		held -= old.size()
	}
	if held > u.m.room {
		return
	}
	u.m.entries[key] = e
	u.m.held = held
}
