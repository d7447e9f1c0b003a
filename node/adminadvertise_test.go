package node_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"powermail/node"
	"powermail/node/nodetest"
)

// A node whose admin API binds every address (0.0.0.0) and that is told
// no --admin-advertise showed its peers and the CLI "0.0.0.0:port",
// which is no address of it anywhere else. It now tells them its
// cluster address's host with the admin port.
func TestWildcardAdminAdvertisesTheClusterHost(t *testing.T) {
	c := nodetest.StartWith(t, 2, func(cfg *node.Config) { cfg.AdminAddr = "0.0.0.0:0" })
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms, err := c.Nodes[0].State().Members()
		if err != nil {
			t.Fatal(err)
		}
		bad := ""
		for _, m := range ms {
			host, _, err := net.SplitHostPort(strings.TrimPrefix(m.AdminAddr, "http://"))
			if err != nil || host != "127.0.0.1" {
				bad = m.ID + " " + m.AdminAddr
			}
		}
		if bad == "" && len(ms) == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("member admin addresses: %s, want 127.0.0.1:port", bad)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
