package frontend

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"
)

// levelLog keeps the level and message of every record at Debug and up.
type levelLog struct {
	mu      *sync.Mutex
	records *[]slog.Record
}

func newLevelLog() levelLog { return levelLog{mu: &sync.Mutex{}, records: &[]slog.Record{}} }

func (h levelLog) Enabled(context.Context, slog.Level) bool { return true }
func (h levelLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h levelLog) WithGroup(string) slog.Handler            { return h }

func (h levelLog) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.records = append(*h.records, r.Clone())
	return nil
}

// count returns the records at level or above, and all of them.
func (h levelLog) count(level slog.Level) (atLevel, all int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range *h.records {
		if r.Level >= level {
			atLevel++
		}
	}
	return atLevel, len(*h.records)
}

// TestSMTPClientConnectionErrorsDoNotFloodTheLog: go-smtp reports every
// connection that ends in an error (a reset, a reply the client did not
// stay to read, an idle timeout) through its error log, which went out at
// Warn: on a dev cluster a single client that connected, sent a line and
// hung up made port 25 log 900 KB in 3 s, 164 octets a connection, for
// as long as it went on. Those are the client's doing and now go out at
// Debug, as refused connections do.
func TestSMTPClientConnectionErrorsDoNotFloodTheLog(t *testing.T) {
	log := newLevelLog()
	cfg := testConfig()
	cfg.Logger = slog.New(log)
	_, addr := startServer(t, cfg, newFakeDeliverer())
	const conns = 40
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("GARBAGE\r\n")); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			c.(*net.TCPConn).SetLinger(0) // a reset
		}
		c.Close()
	}
	// Wait for the server to have seen every connection end.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, all := log.count(slog.LevelDebug); all >= conns || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	warned, all := log.count(slog.LevelWarn)
	if all < conns/2 {
		t.Fatalf("%d records for %d broken connections: the errors are not logged at all", all, conns)
	}
	if warned > 0 {
		t.Fatalf("%d of %d broken client connections logged at Warn or above", warned, conns)
	}
}
