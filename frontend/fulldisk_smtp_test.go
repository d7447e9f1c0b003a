package frontend

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"powermail/node"
	"powermail/node/nodetest"
)

// failingStoreCluster starts three nodes whose n2 has its body store on
// a vfs that, once the toggle is on, fails the store's log writes with
// cause.
func failingStoreCluster(t *testing.T, cause error) (*nodetest.Cluster, *errorfs.Toggle) {
	return failingStoreClusterWith(t, cause, nil)
}

// failingStoreClusterWith is failingStoreCluster with n2's configuration
// changed by tweak too (nil: not).
func failingStoreClusterWith(t *testing.T, cause error, tweak func(*node.Config)) (*nodetest.Cluster, *errorfs.Toggle) {
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".log") && op.Kind == errorfs.OpFileWrite {
			return fmt.Errorf("write %s: %w", op.Path, cause)
		}
		return nil
	})
	tog := &errorfs.Toggle{Injector: inj}
	c := nodetest.StartWith(t, 3, func(cfg *node.Config) {
		if cfg.ID == "n2" {
			cfg.BodyFS = errorfs.Wrap(vfs.Default, tog)
			if tweak != nil {
				tweak(cfg)
			}
		}
	})
	c.AddMailboxes("pw", "bob@example.com")
	return c, tog
}

// TestSMTPOnADiskThatFills: a real node whose disk fills past its
// reserve while a message is on its way (the body store's log write
// fails with ENOSPC) answers DATA 452 4.3.1, never 250 nor a 5xx, and
// from then on refuses at MAIL, until its store is reopened; the sender's
// retry through another node is delivered once.
func TestSMTPOnADiskThatFills(t *testing.T) {
	c, tog := failingStoreCluster(t, syscall.ENOSPC)
	_, full := startServer(t, testConfig(), c.Nodes[1])
	_, other := startServer(t, testConfig(), c.Nodes[0])

	failWhileDATA(t, full, tog, "DATA as the disk fills", 452, "4.3.1")

	o := dial(t, other)
	o.ehlo()
	checkReply(t, "the retry through another node", o.transaction("alice@remote.test", []string{"bob@example.com"}, "Subject: one\r\n\r\nbody\r\n"), 250, "2.0.0")
	if got := waitInbox(t, c.Nodes[0], "bob@example.com", 1); len(got) != 1 {
		t.Fatalf("bob has %d messages, want the retried one only", len(got))
	}
}

// TestSMTPOnAFailedBodyStore: a body store that fails on an I/O error
// (not a full disk) gets DATA 451 4.3.0, and then the node refuses at
// MAIL with 451 4.3.0 until its store is reopened, instead of taking every
// message's body only to refuse it.
func TestSMTPOnAFailedBodyStore(t *testing.T) {
	c, tog := failingStoreCluster(t, errorfs.ErrInjected)
	_, addr := startServer(t, testConfig(), c.Nodes[1])
	failWhileDATA(t, addr, tog, "DATA as the store fails", 451, "4.3.0")
}

// failWhileDATA sends a message for bob to the node at addr, turning
// tog on while its DATA is on its way, and checks that DATA and, after
// tog is off again, the next MAIL both get code and enh: the store stays
// failed until it is reopened (not before --body-store-reopen-interval,
// 30s by default, after the failure).
func failWhileDATA(t *testing.T, addr string, tog *errorfs.Toggle, what string, code int, enh string) {
	t.Helper()
	cl := dial(t, addr)
	cl.ehlo()
	cl.expect("MAIL FROM:<alice@remote.test>", 250, "2.0.0")
	cl.expect("RCPT TO:<bob@example.com>", 250, "2.0.0")
	tog.On()
	checkReply(t, what, cl.data("Subject: one\r\n\r\nbody\r\n"), code, enh)
	tog.Off()
	cl.expect("MAIL FROM:<alice@remote.test>", code, enh)
}
