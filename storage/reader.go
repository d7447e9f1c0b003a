package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Reader streams one body chunk by chunk. It implements io.ReadSeekCloser.
//
// Every chunk's CRC-32C and length are checked before any of its bytes are
// returned. When the body is read sequentially from offset 0, its SHA-256 is
// checked too: before the first byte for a one-chunk body, and at the end
// otherwise, where a mismatch is returned instead of io.EOF. Any corruption
// is an error wrapping ErrCorrupt, and it is sticky.
//
// A Reader sees the body as it was when it was opened, even if the body is
// deleted meanwhile (it holds a Pebble iterator, which pins that state, so
// close Readers promptly). A Reader is not safe for concurrent use.
type Reader struct {
	s   *Store
	ctx context.Context
	h   Hash
	m   manifest
	it  *pebble.Iterator // nil once closed
	key []byte           // scratch chunk key
	pos int64            // offset of the next byte Read returns
	cur []byte           // verified, unread bytes of chunk idx
	idx int64            // chunk the iterator is on, -1 if none
	sha hash.Hash        // non-nil while reading sequentially from offset 0
	err error            // sticky
}

// Reader opens body h for reading from offset 0. It returns an error
// wrapping ErrNotFound if h is not stored. ctx bounds all reads.
func (s *Store) Reader(ctx context.Context, h Hash) (*Reader, error) {
	release, err := s.enterHash(ctx, h)
	if err != nil {
		return nil, err
	}
	defer release()
	return s.openReader(ctx, h)
}

func (s *Store) openReader(ctx context.Context, h Hash) (*Reader, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return nil, err
	}
	m, err := manifestAt(it, h)
	if err != nil {
		return nil, errors.Join(err, it.Close())
	}
	r := &Reader{s: s, ctx: ctx, h: h, m: m, it: it, key: make([]byte, chunkKeyLen), idx: -1, sha: sha256.New()}
	s.readers.add(r)
	return r, nil
}

// manifestAt reads h's manifest through it, so that the manifest and the
// chunks come from one consistent view.
func manifestAt(it *pebble.Iterator, h Hash) (manifest, error) {
	mk := manifestKey(h)
	if !it.SeekGE(mk) || !bytes.Equal(it.Key(), mk) {
		if err := it.Error(); err != nil {
			return manifest{}, manifestReadErr(h, err)
		}
		return manifest{}, fmt.Errorf("%w: %s", ErrNotFound, h)
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return manifest{}, manifestReadErr(h, err)
	}
	return decodeManifest(h, v)
}

// Size returns the body's size in bytes.
func (r *Reader) Size() int64 { return r.m.size }

// Hash returns the body's hash.
func (r *Reader) Hash() Hash { return r.h }

// Written returns when the body was committed.
func (r *Reader) Written() time.Time { return r.m.written }

// Close releases the Reader. It is idempotent.
func (r *Reader) Close() error { return r.s.readers.close(r) }

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	done, err := r.s.enter()
	if err != nil {
		return 0, err
	}
	defer done()
	if err := r.fill(); err != nil {
		return 0, err
	}
	n := copy(p, r.cur)
	r.consume(n)
	return n, nil
}

// Seek implements io.Seeker. Seeking costs nothing until the next Read. The
// whole-body hash is checked only for reads that start at offset 0.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.m.size + offset
	default:
		return r.pos, fmt.Errorf("storage: seek: invalid whence %d", whence)
	}
	if abs < 0 {
		return r.pos, fmt.Errorf("storage: seek to negative offset %d", abs)
	}
	if abs != r.pos {
		r.pos, r.cur, r.sha = abs, nil, nil
		if abs == 0 {
			r.sha = sha256.New()
		}
	}
	return abs, nil
}

func (r *Reader) consume(n int) {
	if r.sha != nil {
		r.sha.Write(r.cur[:n])
	}
	r.cur = r.cur[n:]
	r.pos += int64(n)
}

// fill makes r.cur non-empty, or returns io.EOF or an error.
func (r *Reader) fill() error {
	if r.err != nil || len(r.cur) > 0 {
		return r.err
	}
	if r.pos >= r.m.size {
		return r.atEOF()
	}
	cs := int64(r.m.chunkSize)
	idx := uint32(r.pos / cs)
	data, err := r.chunk(idx)
	if err == nil && r.sha != nil && r.m.chunks() == 1 {
		// The chunk is the whole body: check its hash before any byte leaves.
		if got := HashBytes(data); got != r.h {
			err = corruptf(r.h, "content hash is %s", got)
		}
		r.sha = nil
	}
	if err != nil {
		r.err = err
		return err
	}
	r.cur = data[r.pos-int64(idx)*cs:]
	return nil
}

func (r *Reader) atEOF() error {
	if r.sha == nil {
		return io.EOF
	}
	var got Hash
	r.sha.Sum(got[:0])
	r.sha = nil
	if got != r.h {
		r.err = corruptf(r.h, "content hash is %s", got)
		return r.err
	}
	return io.EOF
}

// chunk positions the iterator on chunk idx and returns its checked data,
// which stays valid until the iterator moves.
func (r *Reader) chunk(idx uint32) ([]byte, error) {
	if err := r.ctx.Err(); err != nil {
		return nil, err
	}
	putChunkKey(r.key, r.m.id, idx)
	var ok bool
	if r.idx >= 0 && r.idx+1 == int64(idx) {
		ok = r.it.Next()
	} else {
		ok = r.it.SeekGE(r.key)
	}
	r.idx = -1
	if !ok || !bytes.Equal(r.it.Key(), r.key) {
		if err := r.it.Error(); err != nil {
			return nil, readErr(r.h, idx, err)
		}
		return nil, chunkCorruptf(r.h, idx, "missing")
	}
	v, err := r.it.ValueAndErr()
	if err != nil {
		return nil, readErr(r.h, idx, err)
	}
	data, good := decodeChunk(r.key, v)
	if !good {
		return nil, chunkCorruptf(r.h, idx, "checksum mismatch")
	}
	if want := r.m.chunkLen(idx); len(data) != want {
		return nil, chunkCorruptf(r.h, idx, "has %d bytes, want %d", len(data), want)
	}
	r.idx = int64(idx)
	return data, nil
}

// readErr wraps a Pebble read error, as ErrCorrupt if Pebble found
// corruption (its own block checksums).
func readErr(h Hash, idx uint32, err error) error {
	if pebble.IsCorruptionError(err) {
		return chunkCorruptf(h, idx, "%v", err)
	}
	return fmt.Errorf("storage: read body %s chunk %d: %w", h, idx, err)
}

// Verify re-reads body h and checks every chunk checksum and length, the
// whole-body SHA-256, and that no stray chunks follow the last one. It
// returns nil, or an error wrapping ErrNotFound or ErrCorrupt (naming h).
func (s *Store) Verify(ctx context.Context, h Hash) error {
	release, err := s.enterHash(ctx, h)
	if err != nil {
		return err
	}
	defer release()
	return s.verify(ctx, h)
}

func (s *Store) verify(ctx context.Context, h Hash) error {
	r, err := s.openReader(ctx, h)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		err := r.fill()
		if errors.Is(err, io.EOF) {
			return r.noStrayChunks()
		}
		if err != nil {
			return err
		}
		r.consume(len(r.cur))
	}
}

func (r *Reader) noStrayChunks() error {
	if r.m.id == 0 {
		return nil
	}
	n := r.m.chunks()
	putChunkKey(r.key, r.m.id, n)
	if r.it.SeekGE(r.key) && bytes.HasPrefix(r.it.Key(), r.key[:9]) {
		return chunkCorruptf(r.h, n, "stray chunk after the last one")
	}
	if err := r.it.Error(); err != nil {
		return readErr(r.h, n, err)
	}
	return nil
}
