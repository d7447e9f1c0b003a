package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrNoProgress: a long transfer (storage verify, mailbox export or
// restore) saw nothing move between the CLI and the node for --timeout.
var ErrNoProgress = errors.New("no progress")

// streamIdleTimeout is how long mailbox export and restore wait by
// default for data to move: a node lists a whole folder before its first
// message goes out, which for millions of messages takes a while, but a
// node that says nothing for this long is hung, and a nightly backup
// should not wait on it for days.
const streamIdleTimeout = 10 * time.Minute

// idleWatch cancels a context once nothing has moved for d: a transfer
// that keeps moving has no limit as a whole.
type idleWatch struct {
	d     time.Duration
	timer *time.Timer
}

// watchIdle returns ctx, cancelled with an ErrNoProgress error naming
// cl's address and timeout (and hint) once nothing has moved for
// cl.timeout, and the function that stops the watch.
func watchIdle(ctx context.Context, cl *clientFlags, hint string) (context.Context, *idleWatch, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	cause := fmt.Errorf("%w from %s: nothing moved for %s %v%s", ErrNoProgress, cl.addr, cl.timeoutName(), cl.timeout, hint)
	w := &idleWatch{d: cl.timeout}
	w.timer = time.AfterFunc(cl.timeout, func() { cancel(cause) })
	return ctx, w, func() { w.timer.Stop(); cancel(nil) }
}

// moved starts the wait again.
func (w *idleWatch) moved() { w.timer.Reset(w.d) }

// reader is r, each read that returns data counting as movement.
func (w *idleWatch) reader(r io.Reader) io.Reader { return &movingReader{r: r, w: w} }

type movingReader struct {
	r io.Reader
	w *idleWatch
}

func (m *movingReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if n > 0 {
		m.w.moved()
	}
	return n, err
}

// orCause is err, or what cancelled ctx when something other than the
// operator did: the request's own failure then reads "context canceled".
func orCause(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}
