package node

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"powermail/storage"
)

// A failure DSN for RET=FULL returns the whole original when it is at
// most maxDSNFull bytes. The original was read through a reader limited
// to maxDSNFull bytes, so a body of exactly that size was read to its
// last byte but never to the end, where its hash is checked: a local copy
// damaged behind valid chunk checksums was quoted as the message.
func TestDSNOfAFullSizeOriginalChecksItsHash(t *testing.T) {
	c := deliveryCluster(t)
	ctx := ctxT(t, 30*time.Second)
	n1 := c.nodes["n1"]
	body := []byte("Subject: big\r\n\r\n")
	line := bytes.Repeat([]byte("x"), 78)
	for len(body)+len(line)+2 <= maxDSNFull {
		body = append(append(body, line...), "\r\n"...)
	}
	body = append(body, bytes.Repeat([]byte("y"), maxDSNFull-len(body))...)
	if len(body) != maxDSNFull {
		t.Fatalf("test body of %d bytes, want %d", len(body), maxDSNFull)
	}
	if _, err := n1.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	h := storage.HashBytes(body)
	if has, _, err := n1.bodies.Has(ctx, h); err != nil || !has {
		t.Fatalf("n1 holds no copy of what it delivered: %v %v", has, err)
	}
	if err := n1.bodies.DamageKeepCRC(ctx, h, 1); err != nil {
		t.Fatal(err)
	}
	got, full, err := n1.original(ctx, dsnReport{hash: h.String(), full: true})
	if err == nil && full {
		t.Fatalf("a damaged original of %d bytes quoted whole (same as stored: %v)", len(got), got == string(body))
	}
	if err != nil && !errors.Is(err, storage.ErrCorrupt) {
		t.Errorf("reading a damaged original: %v, want ErrCorrupt", err)
	}
}
