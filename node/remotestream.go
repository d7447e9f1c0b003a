package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"powermail/storage"
)

// A body too large to read into memory is read from a replica by copying
// it into the local store (remoteread.go). A node whose store cannot take
// the copy, because it is down to its free-space reserve or failed,
// streams the body from the replica instead: otherwise a full node, which
// by then holds none of the mail that arrives (its peers place copies
// elsewhere), could serve no large message at all.
//
// The replica reads its copy through its own store, which checks every
// chunk before sending it, over the authenticated cluster link. Here the
// stream is hashed from its first byte, also across the bytes a Seek
// skips, and at the end the hash must be the body's: a mismatch or a
// short body replaces io.EOF with ErrCorrupt, as the store's own Reader
// does; the failure is sticky, so a caller that reads on for io.EOF
// gets it again. A read that ends before the end (a ranged FETCH)
// relies on the replica's chunk checks, as a ranged read of a local copy
// relies on its chunk CRCs.

// streamedBody reads a body from a replica as it arrives. A Seek
// forwards is a skip; a Seek backwards, and a stream that breaks (the
// replica timeout cuts a request whose reader paused), fetch the body
// again from its start.
type streamedBody struct {
	n    *Node
	ctx  context.Context
	h    storage.Hash
	size int64
	id   string // the replica that answered
	addr string // its cluster address

	rc  io.ReadCloser // nil: not open
	sum hash.Hash     // of the stream's bytes so far
	pos int64         // bytes read from rc
	off int64         // the reader's position
	err error         // a failed hash check; sticky, as storage.Reader's
}

// openStreamed opens h, of size bytes, from the first of its replicas
// that answers.
func (n *Node) openStreamed(ctx context.Context, h storage.Hash, size int64, replicas []string) (Body, error) {
	b := &streamedBody{n: n, ctx: ctx, h: h, size: size}
	err := n.eachReplica(h, replicas, func(id, addr string) error {
		b.id, b.addr = id, addr
		return b.open()
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// open starts the stream from the body's first byte.
func (b *streamedBody) open() error {
	resp, err := b.n.getBody(b.ctx, b.addr, b.h)
	if err != nil {
		return err
	}
	if resp.ContentLength >= 0 && resp.ContentLength != b.size {
		resp.Body.Close()
		return fmt.Errorf("%w: replica at %s has %d bytes of body %s, want %d", storage.ErrCorrupt, b.addr, resp.ContentLength, b.h, b.size)
	}
	b.rc, b.sum, b.pos = resp.Body, sha256.New(), 0
	return nil
}

func (b *streamedBody) Size() int64 { return b.size }

// Seek moves the position; the stream follows at the next Read.
func (b *streamedBody) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += b.off
	case io.SeekEnd:
		offset += b.size
	default:
		return b.off, fmt.Errorf("seek: invalid whence %d", whence)
	}
	if offset < 0 {
		return b.off, fmt.Errorf("seek: negative position %d", offset)
	}
	b.off = offset
	return offset, nil
}

func (b *streamedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		// Every later Read fails too, past the end included: a caller
		// that lost the error (io.CopyN drops one that comes with its
		// last byte) and reads on for io.EOF must not get it.
		return 0, b.err
	}
	if b.off >= b.size {
		return 0, io.EOF
	}
	k, err := b.read(p)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, storage.ErrCorrupt) && b.ctx.Err() == nil {
		// A broken stream: once more from the start.
		b.closeStream()
		if k > 0 {
			// Bytes came with the break (a TLS link closed mid-body
			// gives both): they are the caller's, counted in off; the
			// next Read opens the stream again.
			return k, nil
		}
		k, err = b.read(p)
	}
	if errors.Is(err, storage.ErrCorrupt) {
		// The replica sent what is not the body: it is marked failed,
		// as one whose copy fails a read into memory or into the store
		// is, so later reads ask it last. Its own read, if that found
		// its copy damaged, reported the copy for repair (bodies.go).
		b.err = err
		b.closeStream()
		b.n.health.fail(b.id)
	}
	return k, err
}

// read brings the stream to the reader's position and reads from it.
func (b *streamedBody) read(p []byte) (int, error) {
	if b.rc != nil && b.pos > b.off {
		b.closeStream()
	}
	if b.rc == nil {
		if err := b.open(); err != nil {
			return 0, err
		}
	}
	if skip := b.off - b.pos; skip > 0 {
		k, err := io.CopyN(b.sum, b.rc, skip)
		b.pos += k
		if err != nil {
			return 0, b.ended(err)
		}
	}
	p = p[:min(int64(len(p)), b.size-b.off)]
	k, err := b.rc.Read(p)
	b.sum.Write(p[:k])
	b.pos += int64(k)
	b.off += int64(k)
	if err == nil && b.pos == b.size {
		err = b.check()
		if err == nil {
			err = io.EOF
		}
		if k > 0 && errors.Is(err, io.EOF) {
			err = nil // the next Read says io.EOF
		}
	} else if err != nil {
		err = b.ended(err)
	}
	return k, err
}

// ended explains the end of the stream: io.EOF before the body's size is
// a short copy.
func (b *streamedBody) ended(err error) error {
	if errors.Is(err, io.EOF) {
		if b.pos < b.size {
			return fmt.Errorf("%w: replica at %s sent %d of %d bytes of body %s", storage.ErrCorrupt, b.addr, b.pos, b.size, b.h)
		}
		if cerr := b.check(); cerr != nil {
			return cerr
		}
		return io.EOF
	}
	return err
}

// check compares the whole stream's hash with the body's.
func (b *streamedBody) check() error {
	var got storage.Hash
	b.sum.Sum(got[:0])
	if got != b.h {
		return fmt.Errorf("%w: replica at %s sent a body hashing to %s, want %s", storage.ErrCorrupt, b.addr, got, b.h)
	}
	return nil
}

func (b *streamedBody) closeStream() {
	if b.rc != nil {
		b.rc.Close()
		b.rc = nil
	}
}

func (b *streamedBody) Close() error {
	b.closeStream()
	return nil
}
