package frontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"powermail/node"
)

// junkIP is the i-th of many distinct client keys.
func junkIP(i int) string {
	return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
}

// A flood of junk keys does not evict the records that slow a real
// guessing run: when the table is full, the records that earned the
// least delay go first, the oldest of them first. A guesser's address
// fails four times on one account; then a thousand addresses fail once
// each on accounts of their own, ten times the table's size. The
// guesser's address and the account still wait the delay of four
// failures, and the table stays within MaxTracked. Before, a full table
// dropped half of its records in map order, and the guesser's went with
// them.
func TestThrottleFloodKeepsTheRecordsThatEarnedDelay(t *testing.T) {
	const (
		delay      = 20 * time.Millisecond
		maxTracked = 100
		junk       = 1000
	)
	a := NewAuthenticator(passwords{"alice@example.com": "pw", "bob@example.com": "pw"},
		AuthConfig{FailureDelay: delay, MaxDelay: 5 * time.Second, MaxTracked: maxTracked}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 4 {
		if _, err := a.Login(ctx, "192.0.2.1", "alice@example.com", "guess", true); !errors.Is(err, node.ErrAuthFailed) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}

	work := make(chan int)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for i := range work {
				if _, err := a.Login(ctx, junkIP(i), fmt.Sprintf("junk%d@example.com", i), "x", true); !errors.Is(err, node.ErrAuthFailed) {
					t.Errorf("junk login %d: %v", i, err)
				}
			}
		})
	}
	for i := range junk {
		work <- i
	}
	close(work)
	wg.Wait()

	a.mu.Lock()
	tracked := a.table.len()
	a.mu.Unlock()
	if tracked > maxTracked {
		t.Errorf("%d records after the flood, MaxTracked %d", tracked, maxTracked)
	}
	for _, c := range []struct{ ip, user string }{
		{"192.0.2.1", "bob@example.com"},      // the guesser's address
		{"198.51.100.1", "alice@example.com"}, // the guessed account
	} {
		start := time.Now()
		if _, err := a.Login(ctx, c.ip, c.user, "pw", true); err != nil {
			t.Fatalf("%s from %s: %v", c.user, c.ip, err)
		}
		if d := time.Since(start); d < 8*delay {
			t.Errorf("%s from %s answered after %v; four failures earned %v", c.user, c.ip, d, 8*delay)
		}
	}
}

// Failures past the table's bound are not lost for keys in a line: a
// record with attempts waiting in it stays, however full the table.
func TestThrottleKeepsRecordsInLine(t *testing.T) {
	a := NewAuthenticator(passwords{}, AuthConfig{MaxTracked: 4}, slog.New(slog.DiscardHandler))
	now := time.Now()
	keys := [2]string{"ip:192.0.2.1", "user:alice@example.com"}
	a.fail(keys[0])
	places := a.join(keys, pairKey("192.0.2.1", "alice@example.com"), now)
	for i := range 20 {
		a.fail("ip:" + junkIP(i))
	}
	a.mu.Lock()
	f := a.table.m[keys[0]]
	g := a.table.m[keys[1]]
	a.mu.Unlock()
	if f == nil || f.count != 1 || g == nil {
		t.Errorf("records in line after a flood: ip %+v, user %+v", f, g)
	}
	a.leave(places)
}

// BenchmarkLoginCheckAtMaxTracked times a failing login's check (its
// turn, the password check of a fake store, and the counts) when the
// table is full and every login adds records, so that each one evicts:
// at DefaultMaxTracked it costs what it does at a hundredth of that.
func BenchmarkLoginCheckAtMaxTracked(b *testing.B) {
	for _, size := range []int{DefaultMaxTracked / 100, DefaultMaxTracked} {
		b.Run(fmt.Sprintf("tracked=%d", size), func(b *testing.B) {
			a := NewAuthenticator(passwords{}, AuthConfig{MaxTracked: size}, slog.New(slog.DiscardHandler))
			ctx := context.Background()
			n := 0
			next := func() {
				_, _, err := a.check(ctx, junkIP(n), fmt.Sprintf("u%d@example.com", n), "x")
				if !errors.Is(err, node.ErrAuthFailed) {
					b.Fatal(err)
				}
				n++
			}
			for a.table.len() < size {
				next()
			}
			for b.Loop() {
				next()
			}
			if a.table.len() > size {
				b.Errorf("%d records, MaxTracked %d", a.table.len(), size)
			}
		})
	}
}
