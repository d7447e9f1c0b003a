package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"powermail/node"
)

// beforeCountingLines is the last commit whose node sent no line while
// storage verify counted the bodies: its CLI is the older one that must
// take the new lines.
const beforeCountingLines = "829b1f8"

// verifyStream serves storage verify as a node counting the bodies
// slowly does: a counting line every 300 ms for 2.4 s, then (unless
// cut) a checked body and the last line.
func verifyStream(t *testing.T, cut bool) string {
	line := func(p node.VerifyProgress) []byte {
		raw, _ := json.Marshal(p)
		return append(raw, '\n')
	}
	ln := serveRaw(t, func(c net.Conn) {
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(time.Second))
		c.Read(make([]byte, 4096)) // the request
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n"))
		for i := range 8 {
			c.Write(line(node.VerifyProgress{Counting: true, Total: int64(i)}))
			time.Sleep(300 * time.Millisecond)
		}
		if !cut {
			c.Write(line(node.VerifyProgress{Done: 1, Total: 8}))
			c.Write(line(node.VerifyProgress{Done: 8, Total: 8, Finished: true}))
		}
	})
	return ln.Addr().String()
}

// runVerifyBin runs storage verify of bin with a --timeout shorter than
// the count.
func runVerifyBin(t *testing.T, bin, addr string) (int, string, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, bin, "storage", "verify", "--timeout", "1s", "--addr", addr)
	c.Env = append(os.Environ(), "POWERMAIL_TOKEN="+cliSecret)
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	return exitCode(t, err), out.String(), errb.String()
}

// TestStorageVerifyTakesCountingLines: a node counting the bodies sends
// a counting line now and then; the CLI waits --timeout for each line,
// so a count longer than --timeout goes on, and a stream cut during the
// count says so. A CLI of the release before (built only with
// POWERMAIL_UPGRADE_TEST=1) takes the lines as progress too.
func TestStorageVerifyTakesCountingLines(t *testing.T) {
	// The release before says "8 bodies checked", this one what it
	// counts.
	bins := map[string]string{"this release": binary}
	said := map[string]string{"this release": "8 referenced bodies checked (every listed copy of each read back), 0 short"}
	if os.Getenv(upgradeEnv) == "1" {
		bins["release "+beforeCountingLines] = buildRelease(t, beforeCountingLines)
		said["release "+beforeCountingLines] = "8 bodies checked, 0 short"
	}
	for name, bin := range bins {
		code, out, errOut := runVerifyBin(t, bin, verifyStream(t, false))
		if code != 0 || !strings.Contains(out, said[name]) {
			t.Errorf("%s: a count longer than --timeout: exit %d, stdout %q, stderr %q", name, code, out, errOut)
		}
	}
	code, _, errOut := runVerifyBin(t, binary, verifyStream(t, true))
	if code != 1 || !strings.Contains(errOut, "cut off while the node counted the bodies (7 so far)") {
		t.Errorf("cut during the count: exit %d, stderr %q", code, errOut)
	}
}
