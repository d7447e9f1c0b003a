package node

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"powermail/storage"
)

// A replica whose copy of a body is damaged behind valid chunk checksums
// finds it only at the end of its own read, after it has sent every
// byte. The reader (here a full node streaming the body) refuses the
// bytes, but nothing told the replica: it stayed listed and first in
// line, so every later read of the body went to it and failed, until
// the next scrub. The replica reports its own copy once a read of it
// fails verification, as a scrub would, and the body is read from the
// good replica after that.
func TestStreamedReadOfADamagedReplicaHasItRepaired(t *testing.T) {
	c, full, h, body := fullNodeWithLargeBody(t)
	ctx := ctxT(t, 30*time.Second)
	rec, err := full.State().Body(h.String())
	if err != nil || len(rec.Replicas) < 2 {
		t.Fatalf("body record %+v, %v", rec, err)
	}
	bad := c.nodes[rec.Replicas[0]] // the one a read tries first
	if err := bad.bodies.DamageKeepCRC(ctx, h, 1); err != nil {
		t.Fatal(err)
	}
	if b, err := full.OpenBody(ctx, h.String()); err == nil {
		got, rerr := io.ReadAll(b)
		b.Close()
		if rerr == nil {
			t.Fatalf("read %d bytes of a damaged copy without an error", len(got))
		}
	}
	waitFor(t, 10*time.Second, "the damaged replica to report its copy", func() bool { return bad.corrupt.Load() > 0 })
	waitFor(t, 10*time.Second, "the body to read whole from the full node", func() bool {
		b, err := full.OpenBody(ctx, h.String())
		if err != nil {
			return false
		}
		defer b.Close()
		got, err := io.ReadAll(b)
		return err == nil && bytes.Equal(got, body)
	})
}

// A streamed body's hash is known only at its end, where the last bytes
// came with the mismatch (k > 0 and ErrCorrupt). io.CopyN, which IMAP
// uses for a FETCH BODY[] literal, drops an error that comes with the
// last of its n bytes, and the next Read, which IMAP makes to see the
// end, said io.EOF: a body that failed its hash was sent as a whole,
// good literal. The bytes here are a real replica's over the cluster
// link; the hash the reader expects is changed after the open, as if
// they had changed on the way or come from a release that sends a
// damaged copy whole. The failure must stay.
func TestStreamedBodyHashFailureIsSticky(t *testing.T) {
	_, body, b := openLargeStreamed(t)
	b.h[0] ^= 1
	_, cerr := io.CopyN(io.Discard, b, int64(len(body)))
	_, rerr := b.Read(make([]byte, 1))
	if cerr == nil && rerr == io.EOF {
		t.Fatal("a body that failed its hash read as whole: io.CopyN then io.EOF")
	}
	if !errors.Is(rerr, storage.ErrCorrupt) {
		t.Errorf("a read after the failure: %v, want ErrCorrupt", rerr)
	}
}

// breakingStream hands out up to n more bytes of a replica's stream and
// then, with the last of them, an error: a TLS link closed mid-body
// gives net/http's body reader bytes and io.ErrUnexpectedEOF together.
type breakingStream struct {
	io.ReadCloser
	n int
}

func (s *breakingStream) Read(p []byte) (int, error) {
	if s.n <= len(p) {
		k, _ := s.ReadCloser.Read(p[:s.n])
		s.n -= k
		if s.n == 0 {
			return k, io.ErrUnexpectedEOF
		}
		return k, nil
	}
	k, err := s.ReadCloser.Read(p)
	s.n -= k
	return k, err
}

// A replica's stream that breaks is read again from its start and
// skipped to the reader's position. When it broke with bytes in hand
// (k > 0 and an error), those bytes were counted as read but the retry
// wrote the bytes after them over them in the caller's buffer: the
// caller got the body less those bytes, and the hash, taken over the
// stream as the replica sent it, still passed, so nothing said so (a
// POP3 RETR would end the message short as if whole).
func TestStreamedBodyBrokenWithBytesInHandLosesNone(t *testing.T) {
	_, body, b := openLargeStreamed(t)
	head := make([]byte, 1000)
	if _, err := io.ReadFull(b, head); err != nil {
		t.Fatal(err)
	}
	b.rc = &breakingStream{ReadCloser: b.rc, n: 500}
	rest, err := io.ReadAll(b)
	if got := append(head, rest...); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read across a stream broken with bytes in hand: %d of %d bytes, %v", len(got), len(body), err)
	}
}

// A streamed body that fails its hash at the end came from a replica
// that sent damaged bytes, but the replica was not marked failed, as one
// that fails a read into memory or into the store is: the next read
// asked it first again. The test changes the hash the reader expects
// after the open, as in TestStreamedBodyHashFailureIsSticky.
func TestStreamedBodyHashFailureMarksTheReplica(t *testing.T) {
	full, body, b := openLargeStreamed(t)
	if !full.health.ok(b.id) {
		t.Fatalf("replica %s marked failed before the read", b.id)
	}
	b.h[0] ^= 1
	if got, err := io.ReadAll(b); !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("read %d of %d bytes of a body failing its hash: %v, want ErrCorrupt", len(got), len(body), err)
	}
	if full.health.ok(b.id) {
		t.Errorf("replica %s that sent a body failing its hash is not marked failed", b.id)
	}
}

// openLargeStreamed opens fullNodeWithLargeBody's body as a stream from
// its replicas, closed when the test ends, and returns the full node and
// the body's bytes with it.
func openLargeStreamed(t *testing.T) (*Node, []byte, *streamedBody) {
	t.Helper()
	_, full, h, body := fullNodeWithLargeBody(t)
	ctx := ctxT(t, 30*time.Second)
	rec, err := full.State().Body(h.String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := full.openStreamed(ctx, h, rec.Size, rec.Replicas)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return full, body, b.(*streamedBody)
}
