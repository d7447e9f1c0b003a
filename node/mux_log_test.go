package node

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"
)

// refusalRecords keeps the records of refused cluster connections.
type refusalRecords struct {
	mu   *sync.Mutex
	recs *[]slog.Record
}

func (h refusalRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h refusalRecords) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h refusalRecords) WithGroup(string) slog.Handler            { return h }

func (h refusalRecords) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "refused cluster connection" {
		h.mu.Lock()
		*h.recs = append(*h.recs, r.Clone())
		h.mu.Unlock()
	}
	return nil
}

// snapshot returns the records so far, the Warn ones, and the refusals
// the Warn ones say were left out.
func (h refusalRecords) snapshot() (all, warned int, suppressed int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range *h.recs {
		if r.Level < slog.LevelWarn {
			continue
		}
		warned++
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "suppressed" {
				suppressed += a.Value.Int64()
			}
			return true
		})
	}
	return len(*h.recs), warned, suppressed
}

// TestMuxRefusalsDoNotFloodTheLog: every connection that failed the
// cluster handshake was logged at Warn, so anyone who could reach the
// cluster port could make the node write a line per connection: 1.1 MB
// of log in 5 s from one client on a dev cluster, for as long as it went
// on. At most one refusal a second is now logged at Warn, with the
// number left out since the last one; the others go out at Debug.
func TestMuxRefusalsDoNotFloodTheLog(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := refusalRecords{mu: &sync.Mutex{}, recs: &[]slog.Record{}}
	d := clusterDialer{secret: []byte("0123456789abcdef0123")}
	m := newMux(ln, d, slog.New(log), func(c net.Conn) { c.Close() })
	go m.serve()
	t.Cleanup(func() { m.close() })

	garbage := make([]byte, len(muxMagic)+1+nonceLen)
	copy(garbage, "GARBAGE")
	refuse := func(n int) {
		t.Helper()
		for range n {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c.Write(garbage)
			// The refusal is logged before the mux closes the
			// connection: one at a time, so none meets the caps.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			c.Read(make([]byte, 1))
			c.Close()
		}
	}
	waitFor := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			all, _, _ := log.snapshot()
			if all >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d refusals logged, want %d", all, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	const flood = 100
	start := time.Now()
	refuse(flood)
	waitFor(flood)
	_, warned, _ := log.snapshot()
	if most := int(time.Since(start)/refusalLogEvery) + 1; warned > most {
		t.Fatalf("%d of %d refusals in %v logged at Warn, want at most %d", warned, flood, time.Since(start), most)
	}
	// The next Warn line, a second on, says how many were left out.
	time.Sleep(refusalLogEvery)
	refuse(1)
	waitFor(flood + 1)
	all, warned, suppressed := log.snapshot()
	if int64(warned)+suppressed != int64(all) {
		t.Fatalf("%d refusals: %d at Warn and %d counted as left out", all, warned, suppressed)
	}
}
