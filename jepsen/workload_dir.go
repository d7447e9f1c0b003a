package jepsen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"powermail/jepsen/check"
)

// The directory workload: clients add, remove and read mailboxes and
// forwards through the admin API of random nodes. Each key is either a
// mailbox ("mailbox:d<epoch>.<k>@jepsen.test") or a forward
// ("forward:f<epoch>.<k>@jepsen.test", to box0), and the history is
// checked for linearizability per key against "present or absent":
//
//   - dir-add: POST /v1/mailboxes or /v1/forwards; 409 is a definite
//     "exists", 200 ok;
//   - dir-remove: DELETE; 404 is a definite "not-found";
//   - dir-read: GET /v1/mailboxes/{addr} or /v1/resolve/{addr}, 200 or 404.
//
// A 5xx or a timeout on a write is info: the write may have been
// committed. Keys are retired after dirOpsPerKey operations, so that each
// key's history stays short for porcupine.
const (
	dirKeys      = 2 // keys in use at once: one mailbox, one forward
	dirOpsPerKey = 30
)

type dirWork struct {
	w     *Workload
	mu    sync.Mutex
	epoch [dirKeys]int
	ops   [dirKeys]int
}

func newDirWork(w *Workload) *dirWork { return &dirWork{w: w} }

// pick returns the slot and the address of a key to operate on.
func (d *dirWork) pick(rng *rand.Rand) (int, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	i := rng.IntN(dirKeys)
	d.ops[i]++
	if d.ops[i] > dirOpsPerKey {
		d.epoch[i]++
		d.ops[i] = 1
	}
	prefix := "d"
	if i%2 == 1 {
		prefix = "f"
	}
	return i, fmt.Sprintf("%s%d.s%d@%s", prefix, d.epoch[i], d.w.cfg.Seed, Domain)
}

func (w *Workload) dirClient(ctx context.Context, i int) {
	rng := w.rng(uint64(6000 + i))
	nodes := w.c.Nodes()
	for ctx.Err() == nil {
		slot, addr := w.dirW.pick(rng)
		kind := "mailbox"
		if slot%2 == 1 {
			kind = "forward"
		}
		fs := []string{check.FDirAdd, check.FDirRemove, check.FDirRead}
		w.DirOp(ctx, nodes[rng.IntN(len(nodes))], fs[rng.IntN(len(fs))], kind, addr)
		sleep(ctx, 100*time.Millisecond+time.Duration(rng.Int64N(int64(300*time.Millisecond))))
	}
}

// DirOp runs one directory operation f on a mailbox or forward through
// node n and records it; its key is "<kind>:<addr>".
func (w *Workload) DirOp(ctx context.Context, n *Node, f, kind, addr string) {
	inv := check.Op{Process: w.newProcess(), Type: check.Invoke, F: f, Key: kind + ":" + addr, Node: n.ID}
	w.record(inv)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.OpTimeout)
	defer cancel()
	a := w.c.Admin
	var err error
	switch {
	case f == check.FDirAdd && kind == "mailbox":
		err = a.Post(ctx, n.Admin, "/v1/mailboxes", map[string]string{"address": addr, "password": password(addr)}, nil)
	case f == check.FDirAdd:
		err = a.Post(ctx, n.Admin, "/v1/forwards", map[string]any{"address": addr, "targets": []string{w.boxes[0]}}, nil)
	case f == check.FDirRemove && kind == "mailbox":
		err = a.Delete(ctx, n.Admin, "/v1/mailboxes/"+addr)
	case f == check.FDirRemove:
		err = a.Delete(ctx, n.Admin, "/v1/forwards/"+addr)
	case kind == "mailbox":
		err = a.Get(ctx, n.Admin, "/v1/mailboxes/"+addr, nil)
	default:
		err = a.Get(ctx, n.Admin, "/v1/resolve/"+addr, nil)
	}
	w.record(dirOutcome(inv, err))
}

// dirOutcome turns the reply to a directory operation into its completion.
func dirOutcome(inv check.Op, err error) check.Op {
	done := inv
	var he *HTTPError
	status := 0
	if errors.As(err, &he) {
		status = he.Status
	}
	switch {
	case err == nil && inv.F == check.FDirRead:
		done.Type, done.Exists = check.OK, check.Bool(true)
	case err == nil:
		done.Type = check.OK
	case inv.F == check.FDirRead && status == http.StatusNotFound:
		done.Type, done.Exists = check.OK, check.Bool(false)
	case inv.F == check.FDirAdd && status == http.StatusConflict:
		done.Type, done.Error = check.Fail, check.ErrExists
	case inv.F == check.FDirRemove && status == http.StatusNotFound:
		done.Type, done.Error = check.Fail, check.ErrNotFound
	case status >= 400 && status < 500:
		done.Type, done.Error = check.Fail, err.Error() // refused as invalid: no effect
	case inv.F == check.FDirRead && status != 0:
		done.Type, done.Error = check.Fail, err.Error()
	default:
		// 5xx or no answer: a write may have been committed.
		done.Type, done.Error = check.Info, err.Error()
	}
	return done
}
