package node

import (
	"sync"
	"time"
)

// verifyRun is the progress of one VerifyAll and the sending of it: the
// lines go out one at a time, from the scan as it goes and from a
// heartbeat when nothing else went out for a while (the count before
// the first check, checks that take long), and none after the last.
type verifyRun struct {
	progress func(VerifyProgress)

	mu sync.Mutex // guards p
	p  VerifyProgress

	sendMu sync.Mutex // one progress call at a time; guards last
	last   time.Time

	stop, done chan struct{}
	stopOnce   sync.Once
}

// newVerifyRun starts a run that is counting, with its heartbeat every
// every.
func newVerifyRun(progress func(VerifyProgress), every time.Duration) *verifyRun {
	v := &verifyRun{progress: progress, p: VerifyProgress{Counting: true}, last: time.Now(),
		stop: make(chan struct{}), done: make(chan struct{})}
	go v.heartbeat(every)
	return v
}

func (v *verifyRun) heartbeat(every time.Duration) {
	defer close(v.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-v.stop:
			return
		case <-t.C:
			v.sendIfDue(every)
		}
	}
}

// stopHeartbeat ends the heartbeat and waits until it sends no more.
func (v *verifyRun) stopHeartbeat() {
	v.stopOnce.Do(func() { close(v.stop) })
	<-v.done
}

// sendIfDue sends the progress so far unless a line went out within
// every.
func (v *verifyRun) sendIfDue(every time.Duration) {
	v.sendMu.Lock()
	defer v.sendMu.Unlock()
	if time.Since(v.last) < every {
		return
	}
	v.mu.Lock()
	snap := v.p.clone()
	v.mu.Unlock()
	v.progress(snap)
	v.last = time.Now()
}

// countedSoFar notes the count while it runs.
func (v *verifyRun) countedSoFar(n int64) {
	v.mu.Lock()
	v.p.Total = n
	v.mu.Unlock()
}

// counted ends the count: total bodies are to be checked.
func (v *verifyRun) counted(total int64) {
	v.mu.Lock()
	v.p.Total, v.p.Counting = total, false
	v.mu.Unlock()
}

// checked notes one body's check: ok of its replicas verified, of r
// needed, failed says why the others did not, and a body no longer
// referenced needs none.
func (v *verifyRun) checked(hash string, ok, r int, failed map[string]error, referenced bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.p.noteFailures(failed)
	v.p.Done++
	if referenced && ok < r {
		v.p.Short++
		if len(v.p.ShortBodies) < maxShortListed {
			v.p.ShortBodies = append(v.p.ShortBodies, hash)
		}
	}
}

// finish stops the heartbeat and sends the last line, finished unless
// the run failed (err).
func (v *verifyRun) finish(err error) VerifyProgress {
	v.stopHeartbeat()
	v.mu.Lock()
	v.p.Total = max(v.p.Total, v.p.Done) // bodies delivered since the count
	v.p.Finished, v.p.Counting = err == nil, false
	p := v.p.clone()
	v.mu.Unlock()
	v.sendMu.Lock()
	defer v.sendMu.Unlock()
	v.progress(p)
	return p
}
