package main

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// Every line a server logs, raft's own among them, is in the format
// --log-format chose.
func TestRaftLogsInTheChosenFormat(t *testing.T) {
	for format, prefix := range map[string]string{"text": "time=", "json": `{"time":`} {
		p := &proc{id: "solo", cluster: freeAddr(t), admin: freeAddr(t), data: t.TempDir()}
		p.start(t, "--bootstrap", "--replicas", "1", "--log-format", format)
		p.waitLeader(t, 30*time.Second)
		// A new single node waits a heartbeat timeout before its first
		// election, and raft warns of it.
		waitLog(t, p, "heartbeat timeout reached, starting election")
		p.stop(syscall.SIGKILL) // so that the log is read whole, after the last write
		for _, l := range strings.Split(strings.TrimSpace(p.log.String()), "\n") {
			if !strings.HasPrefix(l, prefix) {
				t.Errorf("--log-format %s: %s", format, l)
			}
		}
	}
}
