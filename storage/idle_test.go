package storage

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestDeleteIfIdleSparesRecentWrites(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	now := time.Now()
	s.now = func() time.Time { return now }
	data := payload(3000, 7)
	h := mustPut(t, s, data)
	const idle = 10 * time.Minute

	if ok, _, err := s.DeleteIfIdle(ctx, h, idle); err != nil || ok {
		t.Fatalf("a body of a store opened just now was deleted: %v %v", ok, err)
	}
	now = now.Add(time.Hour)
	// Written again (a delivery of the same content): recent once more.
	mustPut(t, s, data)
	if ok, _, err := s.DeleteIfIdle(ctx, h, idle); err != nil || ok {
		t.Fatalf("a body written again a moment ago was deleted: %v %v", ok, err)
	}
	if !s.Touched(h, idle) {
		t.Error("Touched does not report the rewrite")
	}
	now = now.Add(idle + time.Second)
	ok, freed, err := s.DeleteIfIdle(ctx, h, idle)
	if err != nil || !ok || freed != int64(len(data)) {
		t.Fatalf("idle body: deleted %v, freed %d, %v", ok, freed, err)
	}
	if has, _, _ := s.Has(ctx, h); has {
		t.Fatal("body still present")
	}
	if ok, _, err := s.DeleteIfIdle(ctx, h, idle); err != nil || ok {
		t.Fatalf("absent body: %v %v", ok, err)
	}
}

func TestDamageIsDetected(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	h := mustPut(t, s, payload(2500, 3))
	if err := s.Damage(ctx, h); err != nil {
		t.Fatal(err)
	}
	wantCorrupt(t, s.Verify(ctx, h), h, "chunk 0")
	// Writing the same content again repairs it.
	mustPut(t, s, payload(2500, 3))
	if err := s.Verify(ctx, h); err != nil {
		t.Fatalf("after rewrite: %v", err)
	}
}

// TestTouchesKeepAWindowAndForgetLater: a commit is remembered for at
// least maxIdleWindow whatever the rotation of generations, its newest
// time wins, and it is forgotten within two windows.
func TestTouchesKeepAWindowAndForgetLater(t *testing.T) {
	var tc touches
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	a, b := HashBytes([]byte("a")), HashBytes([]byte("b"))
	tc.touch(a, t0)
	tc.touch(b, t0.Add(maxIdleWindow-time.Minute)) // just before cur rotates
	tc.touch(a, t0.Add(maxIdleWindow))             // rotates: b goes to prev
	if at, ok := tc.since(b); !ok || !at.Equal(t0.Add(maxIdleWindow-time.Minute)) {
		t.Fatalf("b after one rotation: %v %v", at, ok)
	}
	if at, ok := tc.since(a); !ok || !at.Equal(t0.Add(maxIdleWindow)) {
		t.Fatalf("a touched again: %v %v, want the newer time", at, ok)
	}
	// The next rotation drops b's generation, more than a window after b.
	c := HashBytes([]byte("c"))
	tc.touch(c, t0.Add(2*maxIdleWindow))
	if _, ok := tc.since(b); ok {
		t.Error("b is still remembered two windows on")
	}
	if _, ok := tc.since(a); !ok {
		t.Error("a, touched one window ago, is forgotten")
	}
}

// TestTouchesKeepTheMonotonicClock: the time a touch is given back with
// carries the monotonic reading, so idle checks do not follow steps of
// the wall clock.
func TestTouchesKeepTheMonotonicClock(t *testing.T) {
	var tc touches
	h := HashBytes([]byte("m"))
	tc.touch(h, time.Now())
	at, ok := tc.since(h)
	if !ok || !strings.Contains(at.String(), " m=") {
		t.Fatalf("touch time %v (%v) has no monotonic reading", at, ok)
	}
}
