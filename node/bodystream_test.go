package node

import (
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"powermail/storage"
)

func TestBodyStreamStoresRefusesAndReconnects(t *testing.T) {
	c := newTestCluster(t, 2)
	a := c.leader(5 * time.Second)
	b := c.follower()
	ctx := ctxT(t, 10*time.Second)
	addr := b.cfg.ClusterAddr
	if b.advertise != "" {
		addr = b.advertise
	}

	good := []byte("Subject: stream\r\n\r\nhello\r\n")
	h := storage.HashBytes(good)
	if err := a.bodyPool.send(ctx, addr, b.ID(), h, good); err != nil {
		t.Fatalf("upload: %v", err)
	}
	if err := b.bodies.Verify(ctx, h); err != nil {
		t.Fatalf("uploaded body on the peer: %v", err)
	}

	// A body that does not match its hash is refused, not stored, and the
	// stream stays in step for the next upload.
	bad := []byte("not what the hash says")
	err := a.bodyPool.send(ctx, addr, b.ID(), h, bad)
	if err == nil || errors.Is(err, errBodyStream) || !strings.Contains(err.Error(), "store body") {
		t.Fatalf("mismatched upload: %v", err)
	}
	if got := len(a.bodyPool.idle[addr]); got != 1 {
		t.Fatalf("%d idle streams after a refusal, want 1", got)
	}
	if err := b.bodies.Verify(ctx, storage.HashBytes(bad)); err == nil {
		t.Fatal("a refused body was stored")
	}

	// The peer drops every stream (as after its idle timeout): the pooled
	// one fails and the upload goes through on a new one.
	b.bodySrv.mu.Lock()
	for conn := range b.bodySrv.conns {
		conn.Close()
	}
	b.bodySrv.mu.Unlock()
	other := []byte("Subject: again\r\n\r\nhello\r\n")
	if err := a.bodyPool.send(ctx, addr, b.ID(), storage.HashBytes(other), other); err != nil {
		t.Fatalf("upload after the peer closed the pooled stream: %v", err)
	}
	if err := b.bodies.Verify(ctx, storage.HashBytes(other)); err != nil {
		t.Fatalf("second body on the peer: %v", err)
	}
}

func TestBodyStreamProtocolErrorsClose(t *testing.T) {
	c := newTestCluster(t, 1)
	n := c.leader(5 * time.Second)
	ctx := ctxT(t, 10*time.Second)
	for _, tc := range []struct {
		name string
		op   byte
		size uint32
	}{
		{"too long", bodyOpPut, smallBody + 1},
		{"unknown op", 'X', 10},
	} {
		conn, err := clusterDialer{secret: n.cfg.Secret}.dial(ctx, n.advertise, kindBody)
		if err != nil {
			t.Fatal(err)
		}
		var hdr [bodyHeaderLen]byte
		hdr[0] = tc.op
		binary.BigEndian.PutUint32(hdr[1+hashLen:], tc.size)
		if _, err := conn.Write(hdr[:]); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if k, err := conn.Read(make([]byte, 1)); k != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("%s: read %d bytes, %v; want the stream closed", tc.name, k, err)
		}
		conn.Close()
	}
	if _, err := (clusterDialer{secret: []byte("wrong secret")}).dial(ctx, n.advertise, kindBody); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("body stream with the wrong secret: %v", err)
	}
}
