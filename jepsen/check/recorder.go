package check

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Recorder collects a history from concurrent clients. It stamps each op
// with its index and with the time since the recorder was created (a
// monotonic clock), and optionally streams each op as a JSON line to a
// writer, so that a crashed harness still leaves a usable history.
type Recorder struct {
	mu    sync.Mutex
	start time.Time
	enc   *json.Encoder // nil when not streaming
	ops   History
}

// NewRecorder returns a recorder; w may be nil.
func NewRecorder(w io.Writer) *Recorder {
	r := &Recorder{start: time.Now()}
	if w != nil {
		r.enc = json.NewEncoder(w)
	}
	return r
}

// Record stamps op with Index and Time, appends it and returns the stamped
// op. The op is kept even if streaming it fails.
func (r *Recorder) Record(op Op) (Op, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	op.Index = len(r.ops)
	op.Time = time.Since(r.start).Nanoseconds()
	r.ops = append(r.ops, op)
	if r.enc == nil {
		return op, nil
	}
	if err := r.enc.Encode(&op); err != nil {
		return op, fmt.Errorf("stream op %d: %w", op.Index, err)
	}
	return op, nil
}

// History returns a copy of the ops recorded so far.
func (r *Recorder) History() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(History(nil), r.ops...)
}
