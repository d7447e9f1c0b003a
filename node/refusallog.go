package node

import (
	"log/slog"
	"sync"
	"time"
)

// refusalLogEvery is how often, at most, a refused cluster connection is
// logged at Warn.
const refusalLogEvery = time.Second

// refusalLog logs the connections that fail the cluster handshake.
// Anyone who can reach the cluster port can fail it once per connection,
// as fast as they can connect, so a line each at Warn would let a
// stranger fill the disk with the log. At most one a refusalLogEvery
// goes out at Warn, saying how many were left out since the one before
// ("suppressed"); the others go out at Debug. A member refused for a
// wrong secret or certificate still shows within a second of its first
// try.
type refusalLog struct {
	log *slog.Logger

	mu         sync.Mutex
	last       time.Time // of the last Warn line
	suppressed int64     // refusals since then, logged at Debug only
}

func (l *refusalLog) refused(remote string, err error) {
	now := time.Now()
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < refusalLogEvery {
		l.suppressed++
		l.mu.Unlock()
		l.log.Debug("refused cluster connection", "remote", remote, "err", err)
		return
	}
	left := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	l.log.Warn("refused cluster connection", "remote", remote, "err", err, "suppressed", left)
}
