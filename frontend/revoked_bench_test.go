package frontend

import (
	"context"
	"testing"
	"time"
)

// activeStore says every mailbox is still enabled.
type activeStore struct{}

func (activeStore) AccountActive(context.Context, string) error { return nil }

// BenchmarkAccountCheck measures what the account check adds to each
// IMAP or POP3 command: within AccountCheckInterval it is a clock read
// and an atomic load; once per interval it calls AccountActive, here a
// stand-in (node.Node's costs about 1.5 µs: go test -bench
// AccountActive ./node).
func BenchmarkAccountCheck(b *testing.B) {
	ctx := context.Background()
	b.Run("within-interval", func(b *testing.B) {
		var a accountCheck
		a.start(time.Hour, time.Now())
		b.ReportAllocs()
		for b.Loop() {
			if gone, _ := a.revoked(ctx, activeStore{}, "a@example.com", time.Second); gone {
				b.Fatal("revoked")
			}
		}
	})
	b.Run("every-command", func(b *testing.B) {
		var a accountCheck
		a.start(time.Nanosecond, time.Now())
		b.ReportAllocs()
		for b.Loop() {
			if gone, _ := a.revoked(ctx, activeStore{}, "a@example.com", time.Second); gone {
				b.Fatal("revoked")
			}
		}
	})
}
