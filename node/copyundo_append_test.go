package node

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// appendBetweenPieces is a context that, asked for its error once the
// first piece of a COPY landed in dst, appends a message to dst (a
// session's APPEND between two pieces), and once the next piece landed
// too reports itself cancelled, so the COPY stops there and is undone.
type appendBetweenPieces struct {
	context.Context
	n    *Node
	dst  string
	once sync.Once
	done bool
	err  error
	uid  uint32
	held int64 // messages in dst once the APPEND landed
}

func (c *appendBetweenPieces) Err() error {
	f, err := c.n.State().Folder("a@example.com", c.dst)
	if err == nil && f.Messages > 0 {
		c.once.Do(func() {
			res, err := c.n.Append(c.Context, "a@example.com", c.dst, nil, time.Time{}, strings.NewReader("Subject: own\r\n\r\nown\r\n"))
			c.uid, c.err, c.done, c.held = res.UID, err, true, f.Messages+1
		})
	}
	if c.done && err == nil && f.Messages > c.held {
		return context.Canceled
	}
	return c.Context.Err()
}

// The undo of a COPY that failed part way expunges the copies it made
// and nothing else: a message appended to the destination between two
// pieces, whose UID lies between theirs, stays.
func TestCopyUndoKeepsAMessageAppendedBetweenPieces(t *testing.T) {
	const log2, per = 11, 250
	l, f, ctx := pieceRaceCluster(t, per)
	a := "a@example.com"
	big := bigFolder(t, l, "Big", log2)
	if err := l.CreateFolder(ctx, a, "Copied", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	cut := &appendBetweenPieces{Context: ctx, n: f, dst: "Copied"}
	if _, err := f.Copy(cut, a, "Big", "Copied", viewUIDs(big), false, checkOf(big)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("COPY stopped after an APPEND between pieces: %v", err)
	}
	if cut.err != nil || !cut.done {
		t.Fatalf("APPEND between pieces: %v (done %v)", cut.err, cut.done)
	}
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{l, f} {
		v, err := n.View(ctx, a, "Copied")
		if err != nil {
			t.Fatal(err)
		}
		if got := viewUIDs(v); len(got) != 1 || got[0] != cut.uid {
			t.Errorf("%s: Copied holds UIDs %v after the undo, want only the appended %d", n.ID(), got, cut.uid)
		}
		if v.Folder.UIDNext <= cut.uid+1 {
			t.Errorf("%s: no piece copied after the APPEND (UIDNEXT %d, appended %d)", n.ID(), v.Folder.UIDNext, cut.uid)
		}
	}
}
