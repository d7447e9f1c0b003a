package node

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// The sessions that poll one folder after one change share one read of
// it: each used to miss the cache at once and bring the old view up to
// date by itself, a copy of the whole message list and a read of the
// state per session.
func TestViewAfterAChangeIsReadOnceForAllSessions(t *testing.T) {
	const sessions, log2 = 16, 16
	c := deliveryCluster(t)
	l := c.leader(5 * time.Second)
	const user, folder = "a@example.com", "Big"
	ctx := ctxT(t, time.Minute)
	bigFolder(t, l, folder, log2)
	if _, err := l.StoreFlags(ctx, user, folder, []uint32{7}, FlagsAdd, []string{`\Seen`}); err != nil {
		t.Fatal(err)
	}
	before := l.views.reads.Load()
	start := make(chan struct{})
	views := make([]FolderView, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() {
			<-start
			v, err := l.View(ctx, user, folder)
			if err != nil {
				t.Error(err)
			}
			views[i] = v
		})
	}
	close(start)
	wg.Wait()
	if n := l.views.reads.Load() - before; n != 1 {
		t.Errorf("%d sessions polling after one change read the folder %d times, want once", sessions, n)
	}
	for i, v := range views {
		if len(v.Messages) != 1<<log2 || !slices.Contains(v.Messages[6].Flags, `\Seen`) {
			t.Fatalf("session %d: %d messages, UID %d flags %q", i, len(v.Messages), v.Messages[6].UID, v.Messages[6].Flags)
		}
	}
}
