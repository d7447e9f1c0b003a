package frontend

import (
	"strings"
	"testing"
	"time"
)

// Over MaxConnsPerIP a connection gets 421 4.7.0 and is closed at once;
// a freed slot is usable again.
func TestPerIPLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConnsPerIP = 2
	_, addr := startServer(t, cfg, newFakeDeliverer())
	a := dial(t, addr)
	b := dial(t, addr)

	over := dialRaw(t, addr)
	checkReply(t, "third connection", over.read(), 421, "4.7.0")
	over.expectClosed()

	// A client at the limit that reconnects the instant it read the 221
	// (before the server tore the old connection down) is let in: an
	// over-limit connection waits briefly for a slot before a 421.
	for i := 0; i < 5; i++ {
		a.write("QUIT\r\n")
		checkReply(t, "QUIT", a.read(), 221, "")
		a = dialRaw(t, addr)
		if r := a.read(); r.code != 220 {
			t.Fatalf("reconnect %d right after QUIT: %v", i, r)
		}
	}
	b.expect("NOOP", 250, "")
}

// An over-limit connection that gets a slot within the grace is served
// although no other connection arrives: the waiter has to wake the accept
// loop, which is blocked in the listener.
func TestWaitingConnectionGetsFreedSlot(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConnsPerIP = 1
	_, addr := startServer(t, cfg, newFakeDeliverer())
	for i := 0; i < 3; i++ {
		a := dial(t, addr)
		over := dialRaw(t, addr)
		time.Sleep(100 * time.Millisecond) // over is waiting for a slot now
		a.write("QUIT\r\n")
		checkReply(t, "QUIT", a.read(), 221, "")
		start := time.Now()
		if r := over.read(); r.code != 220 {
			t.Fatalf("round %d: waiting connection got %v, want the 220 greeting", i, r)
		}
		if d := time.Since(start); d > reconnectGrace {
			t.Fatalf("round %d: greeting after %v", i, d)
		}
		over.write("QUIT\r\n")
		checkReply(t, "QUIT", over.read(), 221, "")
	}
}

// A command line over MaxLineLength gets an error reply and the
// connection is closed: no hang.
func TestOversizedCommandLine(t *testing.T) {
	_, addr := startServer(t, testConfig(), newFakeDeliverer())
	c := dial(t, addr)
	c.ehlo()
	c.write("MAIL FROM:<" + strings.Repeat("a", 2*DefaultMaxLineLength) + "@remote.test>\r\n")
	checkReply(t, "long command", c.read(), 500, "5.4.0")
	c.expectClosed()
}

// A silent client hits the idle read timeout: 421 4.4.2, then close.
func TestReadTimeoutIdle(t *testing.T) {
	cfg := testConfig()
	cfg.ReadTimeout = 200 * time.Millisecond
	_, addr := startServer(t, cfg, newFakeDeliverer())
	c := dial(t, addr)
	c.ehlo()
	start := time.Now()
	checkReply(t, "idle", c.read(), 421, "4.4.2")
	c.expectClosed()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("timeout took %v", took)
	}
}

// A client that stalls inside DATA gets a temporary reply, nothing is
// delivered, and the connection is closed rather than the rest of the
// message being read as commands.
func TestReadTimeoutMidData(t *testing.T) {
	cfg := testConfig()
	cfg.ReadTimeout = 200 * time.Millisecond
	f := newFakeDeliverer()
	_, addr := startServer(t, cfg, f)
	c := dial(t, addr)
	c.ehlo()
	c.begin("alice@example.com")
	c.expect("DATA", 354, "")
	c.write("Subject: stalled\r\n\r\npartial")
	checkReply(t, "stalled DATA", c.read(), 451, "4.4.2")
	c.expectClosed()
	if d := f.lastDelivery(t); d.readErr == nil {
		t.Error("Deliver read a complete body from a stalled client")
	}
}

// The read timeout restarts with every read: a slow but steady client
// whose whole message takes longer than ReadTimeout is not cut off.
func TestReadTimeoutIsIdleNotTotal(t *testing.T) {
	cfg := testConfig()
	cfg.ReadTimeout = 150 * time.Millisecond
	f := newFakeDeliverer()
	_, addr := startServer(t, cfg, f)
	c := dial(t, addr)
	c.ehlo()
	c.begin("alice@example.com")
	c.expect("DATA", 354, "")
	for range 6 { // ~300 ms in total, 50 ms gaps
		c.write("slow line\r\n")
		time.Sleep(50 * time.Millisecond)
	}
	c.write(".\r\n")
	checkReply(t, "slow DATA", c.read(), 250, "2.0.0")
}

// Over MaxConns (all clients together) a connection gets 421 4.3.2 at
// once, without the per-IP limit's grace, and a freed slot is usable.
func TestServerConnectionLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConnsPerIP = 10
	cfg.MaxConns = 2
	_, addr := startServer(t, cfg, newFakeDeliverer())
	a := dial(t, addr)
	dial(t, addr)
	over := dialRaw(t, addr)
	checkReply(t, "third connection", over.read(), 421, "4.3.2")
	over.expectClosed()

	a.write("QUIT\r\n")
	checkReply(t, "QUIT", a.read(), 221, "")
	a.expectClosed()
	for deadline := time.Now().Add(5 * time.Second); ; {
		c := dialRaw(t, addr)
		r := c.read()
		if r.code == 220 {
			break
		}
		if r.code != 421 || time.Now().After(deadline) {
			t.Fatalf("after a QUIT: %v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
