package fsm

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// A read error part way through the forwards is an error of ForwardsTo,
// not a shorter list: an operator asking what still points at a mailbox
// before removing it must not be told "nothing" because a table could
// not be read. Below the gated encoding ForwardsTo scans every forward;
// from it, it reads the target index.
func TestForwardsToReportsAReadError(t *testing.T) {
	for _, enc := range []int{0, gatedEncoding} {
		t.Run(fmt.Sprintf("encoding %d", enc), func(t *testing.T) { forwardsToReadError(t, enc) })
	}
}

func forwardsToReadError(t *testing.T, enc int) {
	tog := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".sst") && (op.Kind == errorfs.OpFileReadAt || op.Kind == errorfs.OpFileRead) {
			return fmt.Errorf("read %s: %w", op.Path, syscall.EIO)
		}
		return nil
	})}
	dir, fs := t.TempDir(), errorfs.Wrap(vfs.Default, tog)
	s, err := Open(dir, Options{fs: fs})
	if err != nil {
		t.Fatal(err)
	}
	a := &applier{t: t, s: s}
	if enc != 0 {
		a.raiseTo(enc)
	}
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "bob@example.com"}}})
	for i := range 50 {
		a.must(&ForwardAdd{Address: fmt.Sprintf("f%02d@example.com", i), Targets: []string{"bob@example.com"}})
	}
	if got, err := s.ForwardsTo("bob@example.com", 0); err != nil || len(got) != 50 {
		t.Fatalf("before the fault: %d forwards, %v", len(got), err)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Reopened, the body filter's scan at open reads the same table in
	// the background: had it filled the block cache before the fault
	// is on, the lookup would be served from there (it failed so now
	// and then on a loaded machine). The test waits for that scan, and
	// a cache too small to hold a block makes the lookup read the table.
	scanned := make(chan struct{}, 1)
	onScan := func() {
		select {
		case scanned <- struct{}{}:
		default:
		}
	}
	if s, err = Open(dir, Options{fs: fs, CacheBytes: 1, bodyScanned: onScan}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	<-scanned
	tog.On()
	got, err := s.ForwardsTo("bob@example.com", 0)
	tog.Off()
	if err == nil {
		t.Fatalf("a failed read gave %d forwards and no error", len(got))
	}
}
