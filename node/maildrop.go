package node

import (
	"context"
	"sync"
	"time"

	"powermail/fsm"
)

// DefaultMaildropLease is how long a POP3 maildrop lock outlives its
// holder's last renewal, and so how long a dead node keeps a maildrop.
const DefaultMaildropLease = 30 * time.Second

// LockMaildrop takes the cluster-wide POP3 lock on a mailbox for holder
// (RFC 1939 section 8). The lock is a lease renewed every third of its
// length while ctx lives and unlock has not been called; if this node
// dies, the lease lapses and another node can take the maildrop.
func (n *Node) LockMaildrop(ctx context.Context, addr, holder string) (func(context.Context) error, error) {
	lease := n.cfg.MaildropLease
	if lease <= 0 {
		lease = DefaultMaildropLease
	}
	lock := func(ctx context.Context, release bool) error {
		cmd := &fsm.MaildropLock{Mailbox: addr, Holder: holder, Now: time.Now().UnixMilli(),
			TTL: lease.Milliseconds(), Release: release}
		return n.applyAccess(ctx, cmd, nil)
	}
	if err := lock(ctx, false); err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(ctx, lease/3)
				if err := lock(rctx, false); err != nil {
					n.log.Warn("maildrop lease renewal failed", "mailbox", addr, "holder", holder, "err", err)
				}
				cancel()
			}
		}
	}()
	var once sync.Once
	return func(ctx context.Context) error {
		var err error
		once.Do(func() {
			close(stop)
			<-done
			err = lock(ctx, true)
		})
		return err
	}, nil
}
