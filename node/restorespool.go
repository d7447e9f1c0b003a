package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"powermail/storage"
)

// DefaultRestoreMaxBytesCeiling is the largest max_bytes a restore may
// ask for unless Config.RestoreMaxBytes says otherwise.
const DefaultRestoreMaxBytesCeiling = 1 << 30

// DefaultRestoreMemoryBytes is the largest message a restore holds in
// memory unless Config.RestoreMemoryBytes says otherwise; a larger one
// goes through a spool file.
const DefaultRestoreMemoryBytes = 1 << 20

// spooled is one message of a restore, read whole so that its hash is
// known before it is added (a folder that holds it skips it): in memory
// up to the node's RestoreMemoryBytes, else in an unlinked file in the
// data directory, so that a restore's memory does not grow with its
// largest message. It is held with CRLF line ends (crlfWriter).
type spooled struct {
	hash    storage.Hash // of the message as it is added, CRLF line ends
	rawHash storage.Hash // of the file as the archive had it
	size    int64
	data    []byte   // when small
	file    *os.File // when large
}

// spool reads size bytes of r, with every line ended by CRLF.
func (st *restoreState) spool(r io.Reader, size int64) (*spooled, error) {
	raw := sha256.New()
	src := io.TeeReader(io.LimitReader(r, size), raw)
	if size <= st.memBytes {
		var buf bytes.Buffer
		buf.Grow(int(size))
		w := newCRLFWriter(&buf)
		if _, err := io.Copy(w, src); err != nil {
			return nil, err
		}
		_ = w.finish() // a bytes.Buffer does not fail
		data := buf.Bytes()
		sp := &spooled{hash: storage.HashBytes(data), size: int64(len(data)), data: data}
		raw.Sum(sp.rawHash[:0])
		return sp, nil
	}
	// The spool shares the body store's filesystem, and the message is
	// then stored beside it: for a while it takes twice its size, and
	// a message of bare LFs grows by up to twice on its way in. Both
	// must fit above the free-space reserve, which the raft log and the
	// store's flushes need; a spool that filled the disk would fail them.
	if err := st.n.bodies.CheckSpace(4 * size); err != nil {
		return nil, fmt.Errorf("%w: %w: spool a message of %d bytes: %v", ErrUnavailable, ErrInsufficientStorage, size, err)
	}
	f, err := os.CreateTemp(st.n.cfg.DataDir, ".restore-*")
	if err != nil {
		return nil, spoolError(err)
	}
	// Unlinked at once: the space comes back when the file is closed,
	// also if the node dies first.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, spoolError(err)
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 64<<10)
	w := newCRLFWriter(bw)
	_, err = io.Copy(w, src)
	if err == nil {
		err = w.finish()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		f.Close()
		return nil, spoolError(err)
	}
	sp := &spooled{size: w.n, file: f}
	h.Sum(sp.hash[:0])
	raw.Sum(sp.rawHash[:0])
	return sp, nil
}

// spoolError wraps a failure of the spool file; a full disk is a
// temporary refusal for want of storage (a 503 to the admin client),
// not an internal error.
func spoolError(err error) error {
	if diskFull(err) {
		return fmt.Errorf("%w: %w: spool file: %v", ErrUnavailable, ErrInsufficientStorage, err)
	}
	return fmt.Errorf("spool file: %w", err)
}

// reader reads the message from its start.
func (s *spooled) reader() io.Reader {
	if s.file == nil {
		return bytes.NewReader(s.data)
	}
	return io.NewSectionReader(s.file, 0, s.size)
}

func (s *spooled) Close() error {
	if s.file == nil {
		return nil
	}
	return s.file.Close()
}

// spoolBody reads back a body the restore has seen (a hard link's
// target): the cluster holds it, added by the restore or already there.
// It is spooled rather than streamed into the append, which writes the
// same body again.
func (st *restoreState) spoolBody(ctx context.Context, h storage.Hash) (*spooled, error) {
	body, err := st.n.OpenBody(ctx, h.String())
	if err != nil {
		return nil, fmt.Errorf("body of the link's target: %w", err)
	}
	defer body.Close()
	// The target's file was within max_bytes, but its body may be stored
	// larger: a bare LF is stored as CRLF (crlfWriter), at most doubling
	// the file and ending its last line. A read cut at max_bytes would
	// fail the hash check below for every such link.
	sp, err := st.spool(body, min(body.Size(), linkedBodyBound(st.maxBytes)))
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: body of the link's target, read back from the cluster: %w", ErrUnavailable, err)
	}
	if sp.hash != h && sp.rawHash != h {
		// A read that ended early (or brought other bytes) must not be
		// stored as the link's message. (A body an older restore stored
		// with bare LFs is the raw hash.)
		sp.Close()
		return nil, fmt.Errorf("%w: body of the link's target read back as %s, not %s", ErrUnavailable, sp.hash, h)
	}
	return sp, nil
}

// linkedBodyBound is the most a body the restore stored (or found) for a
// file of at most maxBytes can hold: every byte a bare LF made CRLF, and
// a last line without its end ended.
func linkedBodyBound(maxBytes int64) int64 { return 2*maxBytes + 2 }
