package storage

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// Writer streams one body into the store. It holds at most one chunk in
// memory: each full chunk is written to Pebble (without fsync) before the
// next byte is buffered. Nothing is visible to readers until Commit.
//
// A Writer is not safe for concurrent use. End it with Commit or Abort;
// `defer w.Abort()` right after NewWriter is the intended pattern, since
// Abort after Commit does nothing. A Writer that is simply dropped leaves its
// chunks until CleanupStale or the next Open.
type Writer struct {
	s       *Store
	ctx     context.Context
	sha     hash.Hash
	buf     []byte // current chunk; cap is the chunk size and never grows
	size    int64
	id      uint64 // write id; 0 until one is needed
	spilled uint32 // chunks written to Pebble before Commit
	pending bool   // a pending marker was written for id
	gen     uint64 // the Store's database generation at the first spill
	started time.Time
	err     error // sticky
	done    bool
}

// NewWriter starts a body. ctx bounds the Writer's Write calls.
func (s *Store) NewWriter(ctx context.Context) *Writer {
	return &Writer{s: s, ctx: ctx, sha: sha256.New(), started: s.now()}
}

// Write buffers p, writing each chunk to Pebble as it fills.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		if err := w.makeRoom(); err != nil {
			return n, err
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.append(k)
		p = p[k:]
		n += k
	}
	return n, nil
}

// ReadFrom reads r to EOF straight into the chunk buffer (io.Copy uses it).
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	var total int64
	for {
		if err := w.makeRoom(); err != nil {
			return total, err
		}
		k, err := r.Read(w.buf[len(w.buf):cap(w.buf)])
		w.append(k)
		total += int64(k)
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Size returns the number of bytes written so far.
func (w *Writer) Size() int64 { return w.size }

func (w *Writer) usable() error {
	if w.done {
		return ErrWriterDone
	}
	return w.err
}

// append accounts for k bytes just placed after len(w.buf).
func (w *Writer) append(k int) {
	w.sha.Write(w.buf[len(w.buf) : len(w.buf)+k])
	w.buf = w.buf[:len(w.buf)+k]
	w.size += int64(k)
}

// makeRoom makes sure the buffer has space, spilling it if it is full.
// Spilling only when more data arrives means a body that fits in one chunk
// is written by Commit in a single batch, with no pending marker.
func (w *Writer) makeRoom() error {
	if w.buf == nil {
		w.buf = w.s.getBuf()
	}
	if len(w.buf) < cap(w.buf) {
		return nil
	}
	if err := w.spill(); err != nil {
		w.err = err
		return err
	}
	return nil
}

// spill writes the full buffer as the next chunk, unsynced. The first spill
// also writes the pending marker, in the same batch.
func (w *Writer) spill() error {
	done, err := w.s.enter()
	if err != nil {
		return err
	}
	defer done()
	if err := w.reopened(); err != nil {
		return err
	}
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if uint64(w.spilled)+1 >= maxChunks {
		return fmt.Errorf("%w: more than %d chunks", ErrTooLarge, uint64(maxChunks))
	}
	if err := w.s.space.admit(int64(len(w.buf)), w.s.now()); err != nil {
		return err
	}
	b := w.s.db.NewBatch()
	defer b.Close()
	if !w.pending {
		if err := w.startPending(); err != nil {
			return err
		}
		if err := b.Set(pendingKey(w.id), encodeTime(w.started), nil); err != nil {
			return err
		}
	}
	err = putChunk(b, w.id, w.spilled, w.buf)
	if err == nil {
		err = w.s.commit(b, false)
	}
	if err != nil {
		return fmt.Errorf("storage: write chunk %d: %w", w.spilled, err)
	}
	w.spilled++
	w.buf = w.buf[:0]
	return nil
}

func (w *Writer) startPending() error {
	id, err := w.s.allocID()
	if err != nil {
		return err
	}
	w.s.live.add(id)
	w.id, w.pending, w.gen = id, true, w.s.gen.Load()
	return nil
}

// reopened fails a Writer whose chunks went to a database that the Store
// has since closed and reopened (Reopen): they may be lost, and were
// dropped with every pending write. Call it in an operation (enter).
func (w *Writer) reopened() error {
	if (w.pending || w.spilled > 0) && w.gen != w.s.gen.Load() {
		return fmt.Errorf("%w: the store was reopened after this write began", ErrFailed)
	}
	return nil
}

func encodeTime(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))
}

// Abort discards the body. It is a no-op after Commit or Abort.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	defer w.finish()
	done, err := w.s.enter()
	if err != nil {
		return // closed or failed: the next Open drops the chunks
	}
	defer done()
	w.discard()
}

// discard deletes spilled chunks and the pending marker, unsynced: if the
// deletion is lost in a crash, the marker survives and Open cleans up.
func (w *Writer) discard() {
	if !w.pending || w.s.failed.Load() != nil || w.gen != w.s.gen.Load() {
		return // nothing written, or dropped by the next Open or Reopen
	}
	b := w.s.db.NewBatch()
	defer b.Close()
	err := errors.Join(deleteChunks(b, w.id, w.spilled), b.Delete(pendingKey(w.id), nil))
	if err == nil {
		err = w.s.commit(b, false)
	}
	if err != nil {
		w.s.log.Warn("could not drop uncommitted chunks; the next Open will", "write_id", w.id, "err", err)
		return
	}
	w.pending = false
}

// finish ends the Writer and releases its buffer.
func (w *Writer) finish() {
	w.done = true
	if w.id != 0 {
		w.s.live.remove(w.id)
	}
	w.s.putBuf(w.buf)
	w.buf = nil
}
