package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"powermail/fsm"
)

// tcpPair returns the two ends of one loopback TCP connection.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		got <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-got
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// testSealKeys are the keys of the tests' sealed connections.
func testSealKeys() (toListener, toDialer []byte) {
	return sealKeys(testSecret, kindRPC, bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), nil)
}

// sealedPair seals both ends of a TCP connection with matching keys.
func sealedPair(t *testing.T) (dialer, listener *sealedConn) {
	a, b := tcpPair(t)
	toL, toD := testSealKeys()
	return newSealedConn(a, toL, toD), newSealedConn(b, toD, toL)
}

// sealedListenerEnd returns the raw dialer's end of a TCP connection and
// the listener's end sealed, to write frames (or junk) to by hand.
func sealedListenerEnd(t *testing.T) (raw net.Conn, r *sealedConn) {
	raw, other := tcpPair(t)
	toL, toD := testSealKeys()
	return raw, newSealedConn(other, toD, toL)
}

// Writes of every size, in both directions at once, arrive whole and in
// order, across frame boundaries.
func TestSealedConnCarriesAStream(t *testing.T) {
	d, l := sealedPair(t)
	sizes := []int{0, 1, 100, maxSealFrame - 1, maxSealFrame, maxSealFrame + 1, 300 << 10}
	var want bytes.Buffer
	for i, n := range sizes {
		want.Write(bytes.Repeat([]byte{byte('a' + i)}, n))
	}
	var wg sync.WaitGroup
	for _, pair := range [][2]*sealedConn{{d, l}, {l, d}} {
		w, r := pair[0], pair[1]
		wg.Go(func() {
			for i, n := range sizes {
				if k, err := w.Write(bytes.Repeat([]byte{byte('a' + i)}, n)); err != nil || k != n {
					t.Errorf("write of %d: %d, %v", n, k, err)
				}
			}
		})
		wg.Go(func() {
			got := make([]byte, want.Len())
			if _, err := io.ReadFull(r, got); err != nil {
				t.Errorf("read: %v", err)
			} else if !bytes.Equal(got, want.Bytes()) {
				t.Error("the stream arrived changed")
			}
		})
	}
	wg.Wait()
}

// captureConn records what is written to it.
type captureConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *captureConn) Write(p []byte) (int, error) { return c.buf.Write(p) }

// sealedBytes returns the frames a dialer's sealed connection writes for
// each of msgs.
func sealedBytes(msgs ...string) []byte {
	toL, toD := testSealKeys()
	cc := &captureConn{}
	w := newSealedConn(cc, toL, toD)
	for _, m := range msgs {
		w.Write([]byte(m))
	}
	return cc.buf.Bytes()
}

// A read that times out inside a frame loses nothing: the next read,
// with a new deadline, returns the frame once the rest has come.
func TestSealedConnReadSurvivesATimeout(t *testing.T) {
	raw, r := sealedListenerEnd(t)
	frame := sealedBytes("hello, peer")
	raw.Write(frame[:7])
	r.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := r.Read(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read of half a frame: %v, want a timeout", err)
	}
	raw.Write(frame[7:])
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len("hello, peer"))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "hello, peer" {
		t.Fatalf("after the timeout: %q, %v", got, err)
	}
}

// Bytes that were not sealed with the connection's key, a frame altered
// on the way, frames replayed, reordered or dropped, and an oversized
// length are all refused, and the refusal sticks.
func TestSealedConnRefusesWhatItDidNotSend(t *testing.T) {
	two := sealedBytes("first", "second")
	first := sealedBytes("first")
	second := two[len(first):]
	flipped := bytes.Clone(two)
	flipped[len(first)+6] ^= 1
	huge := []byte{0, 2, 0, 0}
	for _, c := range []struct {
		name string
		wire []byte
		keep int // bytes of good data read before the refusal
	}{
		{"injected", append(bytes.Clone(first), "GET / HTTP/1.1\r\n\r\n"...), 5},
		{"altered", flipped, 5},
		{"replayed", append(bytes.Clone(first), first...), 5},
		{"reordered", append(bytes.Clone(second), first...), 0},
		{"oversized", append(huge, make([]byte, 64)...), 0},
		// Past 2 GiB, a length that turned negative as a 32-bit int
		// passed the size check and panicked the node on the slice.
		{"length past 2 GiB", append([]byte{0xff, 0xff, 0xff, 0xff}, make([]byte, 64)...), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw, r := sealedListenerEnd(t)
			raw.Write(c.wire)
			r.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(io.LimitReader(r, 1<<20))
			if !errors.Is(err, ErrLinkTampered) || len(got) != c.keep {
				t.Fatalf("read %q, %v; want %d good bytes, then ErrLinkTampered", got, err, c.keep)
			}
			if _, err := r.Read(make([]byte, 8)); !errors.Is(err, ErrLinkTampered) {
				t.Fatalf("the next read: %v, want ErrLinkTampered again", err)
			}
		})
	}
}

// injectingRelay passes a dialer's connection on to target, and once
// the handshake has passed (the hello and proof from the dialer),
// writes extra into the stream toward target, as an attacker on the
// path would.
func injectingRelay(t *testing.T, target string, extra []byte) string {
	t.Helper()
	return relayTo(t, target, func(out, in net.Conn) {
		const fromDialer = len(muxMagic) + 1 + nonceLen + macLen
		if _, err := io.CopyN(out, in, int64(fromDialer)); err != nil {
			return
		}
		out.Write(extra)
		io.Copy(out, in)
	})
}

// acceptedRPC dials target through addr with handshake version v and
// returns what the listener's side of the connection reads.
func acceptedRPC(t *testing.T, m *mux, d clusterDialer, addr string, v byte) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := d.dialVersion(ctx, addr, kindRPC, v)
	if err != nil {
		t.Fatalf("dial with version %d: %v", v, err)
	}
	defer conn.Close()
	c, err := m.rpc.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	return buf[:n], err
}

// An attacker on the path who relays the handshake and then writes to
// the stream reached the node's RPC server with version 1; with version
// 2 the node reads nothing of it.
func TestPlainLinkRefusesInjectedBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, d := startTestMux(t, ln, nil)
	inject := []byte("POST /rpc/apply HTTP/1.1\r\n")
	relay := injectingRelay(t, ln.Addr().String(), inject)
	if got, _ := acceptedRPC(t, m, d, relay, linkV1); !bytes.Equal(got, inject) {
		t.Fatalf("version 1: the node read %q, want the injected bytes (the attack this closes)", got)
	}
	if got, err := acceptedRPC(t, m, d, relay, linkV2); len(got) != 0 || !errors.Is(err, ErrLinkTampered) {
		t.Fatalf("version 2: the node read %q, %v; want nothing and ErrLinkTampered", got, err)
	}
}

// oldReleaseListener answers only the version-1 handshake and hangs up
// on anything else, as a release before version 2 does.
func oldReleaseListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go acceptEach(ln, func(conn net.Conn) {
		defer conn.Close()
		pc := &prefixConn{Conn: conn, prefix: make([]byte, len(muxMagicV1))}
		if _, err := io.ReadFull(conn, pc.prefix); err != nil || string(pc.prefix) != muxMagicV1 {
			return
		}
		if _, _, err := serverHandshake(pc, testSecret, nil, time.Now().Add(handshake)); err == nil {
			io.Copy(io.Discard, conn)
		}
	})
	return ln.Addr().String()
}

// A node falls back to version 1 with an older release only while its
// cluster is below encoding 5, and never with a peer that spoke version
// 2 to it before.
func TestLinkFallsBackToAnOlderReleaseOnlyBeforeEncoding5(t *testing.T) {
	old := oldReleaseListener(t)
	ctx := ctxT(t, 10*time.Second)
	var links v1Links
	below5 := clusterDialer{secret: testSecret, spokeV2: &sync.Map{}, legacy: func() bool { return true }, v1: &links}
	conn, err := below5.dial(ctx, old, kindRPC)
	if err != nil {
		t.Fatalf("below encoding 5, with an older release: %v", err)
	}
	if !unsealed(conn) {
		t.Fatal("the version-1 connection is sealed; the older release cannot read that")
	}
	if links.end() != 1 { // as the raise does
		t.Fatal("the version-1 connection was not tracked")
	}
	if _, err := conn.Write([]byte("x")); err == nil {
		t.Fatal("a version-1 connection still writes after the raise")
	}
	at5 := clusterDialer{secret: testSecret, legacy: func() bool { return false }}
	if _, err := at5.dial(ctx, old, kindRPC); !errors.Is(err, errOldPeer) {
		t.Fatalf("at encoding 5, with an older release: %v, want errOldPeer", err)
	}
	below5.spokeV2.Store(old, true) // as if it had run this release before
	if _, err := below5.dial(ctx, old, kindRPC); !errors.Is(err, errOldPeer) {
		t.Fatalf("with a peer that spoke version 2 before: %v, want no fallback", err)
	}
}

// At encoding 5 a node refuses the version-1 handshake; below it, it
// answers it.
func TestListenerRefusesVersion1AtEncoding5(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var at5 bool
	var mu sync.Mutex
	d := clusterDialer{secret: testSecret, legacy: func() bool { mu.Lock(); defer mu.Unlock(); return !at5 }}
	m := newMux(ln, d, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c net.Conn) { c.Close() })
	go m.serve()
	t.Cleanup(func() { m.close() })
	ctx := ctxT(t, 10*time.Second)
	c, err := d.dialVersion(ctx, ln.Addr().String(), kindRPC, linkV1)
	if err != nil {
		t.Fatalf("below encoding 5: %v", err)
	}
	c.Close()
	mu.Lock()
	at5 = true
	mu.Unlock()
	if _, err := d.dialVersion(ctx, ln.Addr().String(), kindRPC, linkV1); err == nil {
		t.Fatal("at encoding 5 a version-1 handshake was answered")
	}
	if err := reachesRPC(t, m, d, ln.Addr().String()); err != nil {
		t.Fatalf("at encoding 5, version 2: %v", err)
	}
}

// Raising a running cluster to encoding 5 ends version 1 on every node,
// and mail still flows over the sealed links.
func TestRaiseToEncoding5EndsVersion1(t *testing.T) {
	c := deliveryClusterWith(t, func(cfg *Config) {
		bs := *cfg.BootstrapSettings
		bs.CommandEncoding = fsm.EncodingJSON4
		cfg.BootstrapSettings = &bs
	})
	l, f := c.leader(5*time.Second), c.follower()
	for id, n := range c.nodes {
		if !n.legacyLinks() {
			t.Fatalf("%s refuses version 1 at encoding 4", id)
		}
	}
	ctx := ctxT(t, 20*time.Second)
	// An unsealed link made before the raise (an older peer's, or one an
	// attacker forced down) does not outlive it.
	old, err := f.dialer().dialVersion(ctx, l.ClusterAddr(), kindRPC, linkV1)
	if err != nil {
		t.Fatalf("version 1 at encoding 4: %v", err)
	}
	defer old.Close()
	mustApply(t, l, &fsm.SettingsSet{Settings: fsm.Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: fsm.EncodingJSON5}})
	old.SetReadDeadline(time.Now().Add(5 * v1LinkCheck))
	if _, err := old.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("a version-1 link after the raise: read %v, want the leader to have closed it", err)
	}
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Deliver(ctx, Message{From: "s@elsewhere.net", Mailboxes: []string{"a@example.com"}, Received: time.Now()},
		bytes.NewReader([]byte("Subject: sealed\r\n\r\nbody\r\n"))); err != nil {
		t.Fatal(err)
	}
	for id, n := range c.nodes {
		if err := n.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		if n.legacyLinks() {
			t.Fatalf("%s still allows version 1 at encoding 5", id)
		}
		d := n.dialer()
		if _, err := d.dialVersion(ctx, l.ClusterAddr(), kindRPC, linkV1); err == nil {
			t.Fatalf("%s: the leader answered a version-1 handshake at encoding 5", id)
		}
	}
}

// BenchmarkLinkWrite4K sends 4 KiB writes (a body copy's size) over
// loopback TCP, plain and sealed, to the reader on the other end.
func BenchmarkLinkWrite4K(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "sealed"}[sealed]
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			done := make(chan struct{})
			toL, toD := testSealKeys()
			go func() {
				defer close(done)
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				var r io.Reader = c
				if sealed {
					r = newSealedConn(c, toD, toL)
				}
				io.Copy(io.Discard, r)
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			var w io.Writer = c
			if sealed {
				w = newSealedConn(c, toL, toD)
			}
			msg := make([]byte, 4096)
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for range b.N {
				if _, err := w.Write(msg); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			<-done
		})
	}
}

// After a large frame an idle connection keeps no buffer its size on
// either end: pools keep dozens of idle connections per peer.
func TestSealedConnIdleKeepsNoLargeBuffer(t *testing.T) {
	d, l := sealedPair(t)
	msg := make([]byte, maxSealFrame)
	go d.Write(msg)
	if _, err := io.ReadFull(l, make([]byte, len(msg))); err != nil {
		t.Fatal(err)
	}
	if cap(d.wbuf) > sealHeaderLen+sealCopyMax+64 || cap(l.rbuf) > sealKeepRead {
		t.Fatalf("idle: the writer keeps %d bytes, the reader %d", cap(d.wbuf), cap(l.rbuf))
	}
}

// A stream cut inside a frame is an unexpected EOF, not a clean end.
func TestSealedConnCutInsideAFrame(t *testing.T) {
	raw, r := sealedListenerEnd(t)
	two := sealedBytes("first", "second message")
	raw.Write(two[:len(two)-10])
	raw.(*net.TCPConn).CloseWrite()
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(r)
	if string(got) != "first" || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read %q, %v; want \"first\" and io.ErrUnexpectedEOF", got, err)
	}
}
