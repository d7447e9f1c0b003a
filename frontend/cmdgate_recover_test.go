package frontend

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestGateFaultEndsOnlyItsConnection: a fault inside the gate (here a
// buffer pool that hands out the wrong type, so the gate panics at its
// first read) must end that one connection with a read error and a log
// line, not propagate into go-smtp's command loop, which would end the
// whole process.
func TestGateFaultEndsOnlyItsConnection(t *testing.T) {
	var logs bytes.Buffer
	tr := newConnTracker(SMTPConfig{MaxConnsPerIP: 2, MaxConns: 10, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	server, client := net.Pipe()
	defer client.Close()
	broken := &sync.Pool{New: func() any { return new(int) }}
	tc := &trackedConn{Conn: server, tracker: tr, start: time.Now(), gate: newCmdGate(4096, broken)}
	go func() { _, _ = io.WriteString(client, "EHLO client.test\r\n") }()
	_ = server.SetDeadline(time.Now().Add(5 * time.Second))
	n, err := tc.Read(make([]byte, 4096))
	if !errors.Is(err, errGateFailed) || n != 0 {
		t.Fatalf("Read = %d, %v; want 0 and errGateFailed", n, err)
	}
	if !tc.isHungUp() || !tc.readFailed() {
		t.Errorf("hung up %v, read failed %v: want both", tc.isHungUp(), tc.readFailed())
	}
	if !strings.Contains(logs.String(), "command gate failed") {
		t.Errorf("no log line for the fault:\n%s", logs.String())
	}
}
