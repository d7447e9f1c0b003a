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
	defer b.Close()
	b.(*streamedBody).h[0] ^= 1
	_, cerr := io.CopyN(io.Discard, b, int64(len(body)))
	_, rerr := b.Read(make([]byte, 1))
	if cerr == nil && rerr == io.EOF {
		t.Fatal("a body that failed its hash read as whole: io.CopyN then io.EOF")
	}
	if !errors.Is(rerr, storage.ErrCorrupt) {
		t.Errorf("a read after the failure: %v, want ErrCorrupt", rerr)
	}
}
