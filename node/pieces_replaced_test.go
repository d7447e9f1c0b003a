package node

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"powermail/fsm"
)

// A DELETE of a large folder that another session deletes and makes
// again while its pieces run deletes the folder of that name, as one
// entry always did (IMAP DELETE names a folder, RFC 9051 §6.3.9), and
// does not answer that no such folder exists while one does. The
// replacement races the pieces, so a run where it missed them is
// repeated.
func TestDeleteOfFolderReplacedMidwayDeletesByName(t *testing.T) {
	const log2, per = 12, 250
	l, f, ctx := pieceRaceCluster(t, per)
	a := "a@example.com"
	for attempt := range pieceRaceAttempts {
		name := fmt.Sprintf("Doomed%d", attempt)
		big := bigFolder(t, l, name, log2)
		if err := f.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		replaced := make(chan bool, 1)
		go func() {
			// After the first piece lands, another session replaces the
			// folder: the rest of this delete's pieces name one gone.
			for {
				f, err := l.State().Folder(a, name)
				if err != nil {
					replaced <- false // the delete finished first
					return
				}
				if f.ID != big.Folder.ID {
					replaced <- false
					return
				}
				if f.Messages < int64(len(big.Messages)) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			// Both proposed at once on the leader, so that no piece
			// forwarded by the follower falls between them.
			deleted := make(chan error, 1)
			go func() {
				_, err := l.Apply(ctx, &fsm.FolderDelete{Mailbox: a, Name: name})
				deleted <- err
			}()
			time.Sleep(100 * time.Microsecond)
			err2 := l.CreateFolder(ctx, a, name, "")
			err1 := <-deleted
			if errors.Is(err2, ErrFolderExists) { // proposed before the delete
				err2 = l.CreateFolder(ctx, a, name, "")
			}
			replaced <- err1 == nil && err2 == nil
		}()
		err := f.DeleteFolder(ctx, a, name)
		if !<-replaced {
			t.Logf("attempt %d: the replacement missed the delete's pieces (%v)", attempt, err)
			continue
		}
		if errors.Is(err, ErrFolderChanged) {
			t.Fatalf("DELETE of a folder replaced meanwhile answered %v", err)
		}
		if err != nil {
			// A piece, or the delete, came between the replacement's
			// delete and create: no folder had the name then.
			t.Logf("attempt %d: %v", attempt, err)
			continue
		}
		return
	}
	t.Skipf("the replacement never landed between two pieces in %d attempts: this run could not set up the race it checks", pieceRaceAttempts)
}
