package node

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// raft logs a refused snapshot itself, at ERROR, at every try (each
// replication backoff, up to ~10 s): on the follower that refused its
// copy, and on the leader that got the refusal back over the network as
// text. Repeats of one such line go out once a minute, saying how many
// were left out; other errors, under the same message, all go out.
func TestRaftSnapshotRefusalLinesRateLimited(t *testing.T) {
	var free atomic.Int64
	var logs bytes.Buffer
	free.Store(4<<20 - 1)
	s, _ := spaceStore(t, 4<<20, &free, &logs)
	refusal := receive(s, 10, bytes.Repeat([]byte("x"), 1<<16))
	if !errors.Is(refusal, ErrSnapshotNoSpace) {
		t.Fatalf("receive at the reserve: %v", refusal)
	}
	remote := fmt.Errorf("failed to restore snapshot 2-10-1: %v", refusal) // text only, as over the network
	other := errors.New("connection reset by peer")

	var buf syncBuffer
	l := newRaftLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	at := time.Now()
	l.repeats.now = func() time.Time { return at }
	for range 5 {
		l.Error("failed to copy snapshot", "error", refusal)
		l.Named("x").Error("failed to install snapshot", "peer", "n3", "id", "2-10-1", "error", remote)
		l.Error("failed to install snapshot", "peer", "n4", "id", "2-10-1", "error", remote)
		l.Error("failed to copy snapshot", "error", other)
	}
	count := func(parts ...string) int {
		n := 0
		for _, line := range strings.Split(buf.String(), "\n") {
			all := line != ""
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		parts []string
		want  int
	}{
		{[]string{`msg="failed to copy snapshot"`, "no room"}, 1},
		{[]string{`msg="failed to install snapshot"`, "module=raft.x", "peer=n3"}, 1},
		{[]string{`msg="failed to install snapshot"`, "peer=n4"}, 1},
		{[]string{`msg="failed to copy snapshot"`, "connection reset"}, 5},
	} {
		if got := count(c.parts...); got != c.want {
			t.Errorf("%d lines with %q, want %d:\n%s", got, c.parts, c.want, buf.String())
		}
	}
	at = at.Add(snapshotWarnEvery)
	l.Error("failed to copy snapshot", "error", refusal)
	if got := count(`msg="failed to copy snapshot"`, "no room", "suppressed=4"); got != 1 {
		t.Errorf("a minute on: %d lines saying 4 were left out, want 1:\n%s", got, buf.String())
	}
}
