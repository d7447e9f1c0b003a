package frontend

import (
	"context"
	"testing"
	"time"

	"powermail/node"
)

// activeStore says every mailbox is still enabled.
type activeStore struct{}

func (activeStore) AccountActive(context.Context, node.Login) error { return nil }

// BenchmarkAccountCheck measures what the account check adds to each
// IMAP or POP3 command: within AccountCheckInterval it is a clock read
// and an atomic load; once per interval it calls AccountActive, here a
// stand-in (node.Node's costs about 1.5 µs: go test -bench
// AccountActive ./node).
func BenchmarkAccountCheck(b *testing.B) {
	ctx := context.Background()
	for _, v := range []struct {
		name     string
		interval time.Duration
	}{
		{"within-interval", time.Hour},
		{"every-command", time.Nanosecond},
	} {
		b.Run(v.name, func(b *testing.B) {
			var a accountCheck
			a.start(node.Login{Address: "a@example.com"}, v.interval, time.Now())
			b.ReportAllocs()
			for b.Loop() {
				if why, _ := a.revoked(ctx, activeStore{}, time.Second); why != loginHolds {
					b.Fatal("revoked")
				}
			}
		})
	}
}
