package fsm

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// StateDigest asks every replica for a digest of its state as it stands
// right after this entry. Apply writes nothing: the entry ends the run of
// entries that share a Pebble batch, so the batch is committed with the
// applied index at this entry, and the replica takes a Pebble snapshot
// before it applies the next one (State.ApplyBatch). Every replica that
// applies the log thus holds a view of the same point of it, and replicas
// that applied alike hold byte-equal key spaces there.
type StateDigest struct {
	// ID names the request, so that the node that asked can collect the
	// digests of this entry and no other.
	ID string `json:"id"`
}

// MaxDigestID is the longest StateDigest.ID apply takes.
const MaxDigestID = 64

func (*StateDigest) Type() CmdType { return CmdStateDigest }

// needsEncoding: a release before EncodingJSON9 does not know the
// command, and must stop on its encoding rather than meet an unknown type.
func (*StateDigest) needsEncoding() int { return EncodingJSON9 }

func (c *StateDigest) apply(*txn) (any, error) {
	if c.ID == "" || len(c.ID) > MaxDigestID {
		return nil, errorf(ErrInvalid, "state digest ID must be 1 to %d bytes, not %d", MaxDigestID, len(c.ID))
	}
	return nil, nil
}

// ErrViewClosed reports a View released, or closed under its reader
// because the state was closed or replaced by a snapshot (Restore).
var ErrViewClosed = errors.New("state view closed")

// View is a consistent read-only view of the state at one applied index,
// handed to Options.OnStateDigest. Its owner must Release it. Restore and
// Close close every open view first, so a reader of a view that outlives
// its store gets ErrViewClosed, not a crash.
type View struct {
	s     *State
	index uint64
	mu    sync.Mutex       // held while a page is read, and to close
	snap  *pebble.Snapshot // nil once closed
}

// Index is the applied index the view was taken at.
func (v *View) Index() uint64 { return v.index }

// Release frees the view. It is safe to call more than once.
func (v *View) Release() {
	v.close()
	v.s.viewsMu.Lock()
	delete(v.s.views, v)
	v.s.viewsMu.Unlock()
}

func (v *View) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.snap != nil {
		_ = v.snap.Close()
		v.snap = nil
	}
}

// newView snapshots the state at index. The caller holds s.mu shared and
// is the apply path, so nothing is written between the commit of index
// and the snapshot.
func (s *State) newView(index uint64) *View {
	v := &View{s: s, index: index, snap: s.db.NewSnapshot()}
	s.viewsMu.Lock()
	if s.views == nil {
		s.views = map[*View]struct{}{}
	}
	s.views[v] = struct{}{}
	s.viewsMu.Unlock()
	return v
}

// closeViews closes every open view. Restore and Close call it before they
// close the store the views read.
func (s *State) closeViews() {
	s.viewsMu.Lock()
	views := slices.Collect(maps.Keys(s.views))
	s.views = nil
	s.viewsMu.Unlock()
	for _, v := range views {
		v.close()
	}
}

// takeDigestView hands a view at index to Options.OnStateDigest.
func (s *State) takeDigestView(id string, index uint64) {
	if s.opts.OnStateDigest == nil {
		return
	}
	s.opts.OnStateDigest(id, s.newView(index))
}

// Digest is the SHA-256 of a view's key space.
type Digest struct {
	Index  uint64 `json:"index"`
	SHA256 string `json:"sha256"` // hex
	Keys   int64  `json:"keys"`
	Bytes  int64  `json:"bytes"` // of keys and values
}

// digestPage is how many keys Digest reads under one hold of the view's
// lock: Restore and Close wait at most a page for a digest in progress.
const digestPage = 4096

// Digest hashes every key and value of the view in key order, each
// preceded by its length as a uvarint, so that no two key spaces give
// the same stream. It streams: memory does not grow with the state, a
// large one takes time. Nothing is left out: every key of the state is
// written by apply (or copied verbatim from another replica's snapshot
// by Restore), the applied index included, which every replica holds at
// the view's index. It stops early when ctx ends or the view is closed.
func (v *View) Digest(ctx context.Context) (Digest, error) {
	h := sha256.New()
	d := Digest{Index: v.index}
	var lower []byte
	var lenBuf [binary.MaxVarintLen64]byte
	for {
		if err := ctx.Err(); err != nil {
			return Digest{}, fmt.Errorf("state digest at %d: %w", v.index, err)
		}
		next, done, err := v.page(lower, func(k, val []byte) {
			for _, part := range [][]byte{k, val} {
				h.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(part)))])
				h.Write(part)
			}
			d.Keys++
			d.Bytes += int64(len(k) + len(val))
		})
		if err != nil {
			return Digest{}, fmt.Errorf("state digest at %d: %w", v.index, err)
		}
		if done {
			d.SHA256 = hex.EncodeToString(h.Sum(nil))
			return d, nil
		}
		lower = next
	}
}

// page reads up to digestPage keys from lower on, and returns the bound
// of the next page or done.
func (v *View) page(lower []byte, each func(k, val []byte)) (next []byte, done bool, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.snap == nil {
		return nil, false, ErrViewClosed
	}
	it, err := v.snap.NewIter(&pebble.IterOptions{LowerBound: lower})
	if err != nil {
		return nil, false, err
	}
	n := 0
	ok := it.First()
	for ; ok && n < digestPage; ok = it.Next() {
		val, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return nil, false, err
		}
		each(it.Key(), val)
		n++
	}
	if ok {
		next = slices.Clone(it.Key())
	}
	return next, !ok, it.Close()
}
