package frontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"powermail/node"
)

// checkTableInvariants fails t unless the table is as a quiet
// Authenticator leaves it: nobody in line, every record in exactly the
// list of its level and holding a failure or a pass, the lists linked
// both ways, and no more records than MaxTracked. a.mu is held.
func checkTableInvariants(t *testing.T, tb *throttleTable) {
	t.Helper()
	listed := 0
	for lv := range tb.levels {
		l := &tb.levels[lv]
		var prev *failure
		for f := l.head; f != nil; prev, f = f, f.next {
			listed++
			switch {
			case f.prev != prev:
				t.Fatalf("level %d: %s's prev link is broken", lv, f.key)
			case f.level != lv:
				t.Fatalf("%s is in list %d but says level %d", f.key, lv, f.level)
			case tb.m[f.key] != f:
				t.Fatalf("%s is listed but not in the map", f.key)
			case f.inLine != 0 || f.tail != nil:
				t.Fatalf("%s is listed with %d in line", f.key, f.inLine)
			case f.count <= 0 && !f.pass:
				t.Fatalf("%s is listed with neither failures nor a pass", f.key)
			case f.pass && f.count != 0:
				t.Fatalf("%s has a pass and %d failures", f.key, f.count)
			case lv != min(f.count, len(tb.levels)-1):
				t.Fatalf("%s with %d failures is in list %d", f.key, f.count, lv)
			}
		}
		if l.tail != prev {
			t.Fatalf("level %d: tail is not the last record", lv)
		}
	}
	if listed != len(tb.m) {
		t.Fatalf("%d records in the map, %d in lists: some are in neither a list nor a line", len(tb.m), listed)
	}
	if len(tb.m) > tb.max {
		t.Fatalf("%d records, MaxTracked %d", len(tb.m), tb.max)
	}
}

// Logins from a few addresses on a few accounts, right and wrong
// passwords, some given up while in line, all at once on a table far
// too small for them: once they are done, the table holds together
// (checkTableInvariants), and every answer was one a login may give.
func TestThrottleTableHoldsUnderConcurrentLogins(t *testing.T) {
	pw := passwords{}
	for i := range 4 {
		pw[fmt.Sprintf("u%d@example.com", i)] = "pw"
	}
	a := NewAuthenticator(pw, AuthConfig{FailureDelay: time.Millisecond, MaxDelay: 8 * time.Millisecond, MaxTracked: 12},
		slog.New(slog.DiscardHandler))
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for range 150 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.IntN(6))*time.Millisecond+time.Millisecond)
				ip := fmt.Sprintf("192.0.2.%d", r.IntN(6))
				user := fmt.Sprintf("u%d@example.com", r.IntN(5)) // u4: no mailbox
				password := "pw"
				if r.IntN(2) == 0 {
					password = "guess"
				}
				_, err := a.Login(ctx, ip, user, password, true)
				cancel()
				if err != nil && !errors.Is(err, node.ErrAuthFailed) && !errors.Is(err, node.ErrUnavailable) {
					t.Errorf("login: %v", err)
				}
			}
		})
	}
	wg.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	checkTableInvariants(t, a.table)
}
