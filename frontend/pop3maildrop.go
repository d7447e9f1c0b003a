package frontend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"powermail/fsm"
	"powermail/node"
)

// The maildrop a POP3 session opens at login: the cluster-wide lock
// (RFC 1939 §4: exclusive access while in TRANSACTION) and the snapshot
// that numbers the messages.

// openMaildrop takes the maildrop lock and the snapshot (RFC 1939 §4:
// the server acquires an exclusive-access lock, then assigns message
// numbers and sizes). On failure the session stays in AUTHORIZATION.
func (ss *pop3Session) openMaildrop(login node.Login) {
	addr := login.Address
	if err := ss.lockMaildrop(addr); err != nil {
		ss.errReply(ss.replyFor(err, "lock maildrop"))
		return
	}
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.cfg.BackendTimeout)
	view, err := ss.srv.store.View(ctx, addr, pop3Maildrop)
	var kept map[uint32]string
	if uids, ok := viewUIDs(view); err == nil && ok {
		kept, err = ss.srv.store.POP3UIDLs(ctx, addr, view.Folder.ID, uids)
	}
	cancel()
	if err != nil {
		ss.releaseLock()
		ss.errReply(ss.replyFor(err, "read maildrop"))
		return
	}
	if !ss.preAuth.loggedIn() {
		// PreAuthTimeout ran out while the login was under way: the
		// connection reads no more, so the session cannot go on.
		ss.releaseLock()
		ss.errReply(pop3PreAuthText)
		ss.quit = true
		return
	}
	if ss.tc.expired.Load() {
		// A shutdown began while the lock and the snapshot were taken
		// (the session is not busy yet, so it was expired): as in login,
		// say so rather than +OK. The limit above has stopped, so only a
		// shutdown can have expired the connection by now.
		ss.releaseLock()
		ss.errReply(pop3ShutdownText)
		ss.quit = true
		return
	}
	ss.enterTransaction(login, view, kept)
}

// enterTransaction starts the TRANSACTION state on view, the snapshot
// of the maildrop, with the unique-ids kept from a previous server.
func (ss *pop3Session) enterTransaction(login node.Login, view node.FolderView, kept map[uint32]string) {
	addr := login.Address
	ss.addr = addr
	ss.uidValid = view.Folder.UIDValidity
	ss.folderID = view.Folder.ID
	ss.msgs = make([]pop3Message, len(view.Messages))
	for i, m := range view.Messages {
		ss.msgs[i] = pop3Message{uid: m.UID, hash: m.Hash, size: m.Size}
	}
	ss.keepUIDLs(kept)
	ss.state = pop3Transaction
	ss.armAccountCheck(login)
	ss.tc.setBusy(true) // Shutdown lets it reach QUIT (pop3server.go)
	ss.log = ss.log.With("mailbox", addr)
	n, size := ss.totals()
	ss.log.Info("pop3: login", "messages", n, "octets", size, "tls", ss.secure)
	ss.ok("maildrop has %s (%d octets)", pop3Count(n), size)
}

// lockMaildrop takes the cluster-wide maildrop lock for this session and
// keeps its unlock function. The lock is a lease that lives as long as
// its context, which must outlive the call: the call is bounded by a
// timer, not a deadline.
func (ss *pop3Session) lockMaildrop(addr string) error {
	cfg := ss.srv.cfg
	holder := "pop3/" + cfg.ServerID + "/" + ss.id
	lockCtx, lockCancel := context.WithCancel(ss.ctx)
	timer := time.AfterFunc(cfg.BackendTimeout, lockCancel)
	unlock, err := ss.srv.store.LockMaildrop(lockCtx, addr, holder)
	late := !timer.Stop()
	if err == nil && !late {
		ss.unlock, ss.lockCancel = unlock, lockCancel
		return nil
	}
	lockCancel()
	return ss.lockFailed(addr, holder, unlock, err, late)
}

// lockFailed cleans up after a lock attempt that did not leave the
// session holding the lock, and returns the error to answer with. Only
// ErrLocked says for sure that the lock is not ours. Any other failure
// (no answer in time, leadership lost, the server closing) may have come
// after the lock was committed, and a lock left so would keep the user's
// next session out until its lease lapsed: it is given back.
func (ss *pop3Session) lockFailed(addr, holder string, unlock func(context.Context) error, err error, late bool) error {
	switch {
	case errors.Is(err, node.ErrLocked):
		return err
	case err == nil: // granted, but after the deadline
		ss.unlockWith(unlock)
		err = context.DeadlineExceeded
	default:
		ss.releaseUncertainLock(addr, holder, err)
	}
	if late {
		return fmt.Errorf("%w: maildrop lock: no answer within %v: %w", node.ErrUnavailable, ss.srv.cfg.BackendTimeout, err)
	}
	return err
}

// releaseUncertainLock gives back the maildrop lock if LockMaildrop took
// it for holder although it returned cause. MailStore has no release by
// holder, so this takes the lock again for the same holder, which the
// directory grants if the lock is ours or free, and releases it at once;
// if another session holds it (ErrLocked), ours was never taken. Either
// way this holder ends without the lock. It is best effort, with a short
// timeout of its own: a lock it cannot release lapses with its lease,
// which nothing renews.
func (ss *pop3Session) releaseUncertainLock(addr, holder string, cause error) {
	timeout := min(pop3ReleaseTimeout, ss.srv.cfg.BackendTimeout)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ss.ctx), timeout)
	defer cancel()
	unlock, err := ss.srv.store.LockMaildrop(ctx, addr, holder)
	if err == nil {
		err = unlock(ctx)
	}
	switch {
	case err == nil:
		ss.log.Info("pop3: maildrop lock released after an uncertain failure", "cause", cause)
	case errors.Is(err, node.ErrLocked):
		// Another session holds it: ours was never taken.
	default:
		ss.log.Warn("pop3: maildrop lock may stay held until its lease lapses", "cause", cause, "err", err)
	}
}

// releaseLock gives the maildrop lock back, if held. It runs after QUIT
// and when the session ends any other way, with a context of its own, so
// that a cancelled session (or server Close) still releases it.
func (ss *pop3Session) releaseLock() {
	if ss.unlock == nil {
		return
	}
	ss.unlockWith(ss.unlock)
	ss.lockCancel()
	ss.unlock, ss.lockCancel = nil, nil
}

func (ss *pop3Session) unlockWith(unlock func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ss.ctx), ss.srv.cfg.BackendTimeout)
	defer cancel()
	if err := unlock(ctx); err != nil {
		// The lease lapses on its own once its context ends.
		ss.log.Warn("pop3: releasing maildrop lock", "err", err)
	}
}

// keepUIDLs gives the maildrop's messages the unique-ids kept for them
// from a previous server. RFC 1939 §7: a unique-id is 1 to 70 characters
// from 0x21 to 0x7E and no two messages of a maildrop share one. The
// state keeps only such ids, none of the "<UIDVALIDITY>.<UID>" form the
// others have (fsm.StorablePOP3UIDL), and a restore gives each once; a
// repeat all the same (state written otherwise) goes to the first
// message only, in UID order, and the others keep the usual form.
func (ss *pop3Session) keepUIDLs(kept map[uint32]string) {
	if len(kept) == 0 {
		return
	}
	seen := make(map[string]struct{}, len(kept))
	for i, m := range ss.msgs {
		id, ok := kept[m.uid]
		if !ok || !fsm.StorablePOP3UIDL(id, ss.uidValid) {
			continue
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		ss.msgs[i].uidl = id
	}
}

// viewUIDs is the range of the view's UIDs, ok false when it has no
// message: the unique-ids kept are looked up for these alone.
func viewUIDs(view node.FolderView) (uids fsm.UIDRange, ok bool) {
	for i, m := range view.Messages {
		if i == 0 {
			uids = fsm.UIDRange{m.UID, m.UID}
		}
		uids[0], uids[1] = min(uids[0], m.UID), max(uids[1], m.UID)
	}
	return uids, len(view.Messages) > 0
}
