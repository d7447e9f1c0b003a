package storage

import (
	"context"
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
