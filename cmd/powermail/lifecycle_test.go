package main

import (
	"syscall"
	"testing"
	"time"
)

// A node stopped (SIGTERM) while it bootstraps exits 0 at any point of
// its start, as a stop asked for, and starts again and finishes.
func TestStopWhileBootstrappingIsClean(t *testing.T) {
	var last *proc
	for _, wait := range []time.Duration{300 * time.Millisecond, 700 * time.Millisecond, 1200 * time.Millisecond, 2 * time.Second} {
		p := &proc{id: "solo", cluster: freeAddr(t), admin: freeAddr(t), data: t.TempDir()}
		p.start(t, "--bootstrap", "--replicas", "1")
		time.Sleep(wait)
		if err := p.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM %v after the start: %v\n%s", wait, err, logTail(p.log.String(), 20))
		}
		last = p
	}
	last.start(t, last.extra...)
	last.waitLeader(t, 30*time.Second)
}
