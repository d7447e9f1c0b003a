package fsm

import (
	"bytes"
	"slices"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

// hotRecords caches the decoded cluster settings and member list. Every
// delivery reads both (placement, RCPT checks, the Deliver apply), and
// only rare commands change them.
//
// Invariant: a cached value is used only while its generation equals
// gen. ApplyBatch bumps gen after committing a batch that wrote either
// record and before it publishes the new applied index; Open and Restore
// bump it when they swap the database. So a reader that waited for an
// applied index never sees a value older than that index, and a value
// read from the database just before a bump is stored under the old
// generation and never used.
type hotRecords struct {
	gen      atomic.Uint64
	settings atomic.Pointer[hotValue[Settings]]
	members  atomic.Pointer[hotValue[[]Member]]
}

type hotValue[T any] struct {
	gen uint64
	v   T
}

func (h *hotRecords) invalidate() { h.gen.Add(1) }

// loadHot returns the cached value if it is current, or reads it.
func loadHot[T any](gen *atomic.Uint64, p *atomic.Pointer[hotValue[T]], read func() (T, error)) (T, error) {
	g := gen.Load()
	if c := p.Load(); c != nil && c.gen == g {
		return c.v, nil
	}
	v, err := read()
	if err == nil {
		p.Store(&hotValue[T]{gen: g, v: v})
	}
	return v, err
}

func (h *hotRecords) getSettings(r pebble.Reader) (Settings, error) {
	return loadHot(&h.gen, &h.settings, func() (Settings, error) { return readSettings(r) })
}

// getMembers returns the member list; callers must not modify it.
func (h *hotRecords) getMembers(r pebble.Reader) ([]Member, error) {
	return loadHot(&h.gen, &h.members, func() ([]Member, error) { return readMembers(r) })
}

func readSettings(r pebble.Reader) (Settings, error) {
	out := defaultSettings
	_, err := getJSON(r, keySettings, &out)
	return out, err
}

func readMembers(r pebble.Reader) ([]Member, error) {
	return scanReader[Member](r, []byte(memberPrefix), "", 0)
}

// isHotKey reports whether a write to key changes a cached record.
func isHotKey(key []byte) bool {
	return bytes.Equal(key, keySettings) || bytes.HasPrefix(key, []byte(memberPrefix))
}

// hotTxn lets an entry read the cached records while its batch has not
// written them, and the batch itself once it has.
type hotTxn struct {
	rec   *hotRecords
	db    pebble.Reader // the committed state the cache reflects
	dirty bool          // the batch wrote settings or a member
}

func (t *txn) settings() (Settings, error) {
	if t.hot == nil || t.hot.dirty {
		return readSettings(t.b)
	}
	return t.hot.rec.getSettings(t.hot.db)
}

func (t *txn) isMember(id string) (bool, error) {
	if t.hot == nil || t.hot.dirty {
		return t.has(memberKey(id))
	}
	ms, err := t.hot.rec.getMembers(t.hot.db)
	return slices.ContainsFunc(ms, func(m Member) bool { return m.ID == id }), err
}

// wrote marks the batch dirty if key is a cached record (a range delete
// always does: it may cover one).
func (t *txn) wrote(key []byte) {
	if t.hot != nil && (key == nil || isHotKey(key)) {
		t.hot.dirty = true
	}
}
