package node

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"powermail/fsm"
)

// Authenticate verifies a password against the replicated hash and
// returns the login: the mailbox's canonical address and a fingerprint
// of the hash the password matched (Login.Credential), for
// AccountActive. Unknown user, wrong password,
// disabled mailbox and a mailbox that cannot log in (no password, or a
// hash stored before fsm.CheckPasswordHash's limits) all give
// ErrAuthFailed, and every one of them costs the same hash work as a
// known user's check, so neither the answer nor its timing tells which
// addresses exist or which have a password. It reads after a read
// barrier: a password changed or a mailbox disabled through any node
// applies at once.
func (n *Node) Authenticate(ctx context.Context, user, password string) (Login, error) {
	if err := n.readBarrier(ctx); err != nil {
		return Login{}, err
	}
	mb, err := n.state.Mailbox(user)
	if err != nil && !errors.Is(err, fsm.ErrNotFound) && !errors.Is(err, fsm.ErrInvalid) {
		return Login{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	hash, usable := n.loginHash(mb, err == nil)
	ok, err := n.verifyPassword(ctx, hash, password)
	switch {
	case err != nil:
		return Login{}, err
	case !usable || !ok:
		return Login{}, fmt.Errorf("%w: %s", ErrAuthFailed, user)
	case mb.Disabled:
		return Login{}, fmt.Errorf("%w: %s is disabled", ErrAuthFailed, user)
	}
	// The fingerprint is of the hash just verified, read with the
	// record: a change applied while the password was being checked
	// ends the session at its first check.
	return Login{Address: mb.Address, Credential: CredentialOf(mb.PasswordHash)}, nil
}

// loginHash is the hash a login checks against, and whether a match may
// log in. A mailbox that does not exist, has no password, or has a hash
// VerifyPassword would refuse without work gets the dummy hash instead,
// which costs what a real check costs and never logs in.
func (n *Node) loginHash(mb fsm.Mailbox, found bool) (string, bool) {
	if !found || mb.PasswordHash == "" {
		return n.dummyHash(), false
	}
	if err := fsm.CheckPasswordHash(mb.PasswordHash); err != nil {
		n.log.Warn("mailbox password hash unusable, login refused; set a new password", "mailbox", mb.Address, "err", err)
		return n.dummyHash(), false
	}
	return mb.PasswordHash, true
}

// verifyPassword checks password against hash once the memory the check
// takes is free in the node's budget (Config.PasswordMemory), so that a
// flood of logins from many addresses cannot run argon2 at 19 MiB each
// without bound. A hash that asks for more than the whole budget runs
// alone. A login whose ctx ends while it waits gets ErrUnavailable.
func (n *Node) verifyPassword(ctx context.Context, hash, password string) (bool, error) {
	w := min(max(fsm.PasswordMemory(hash), minPasswordWeight), n.cfg.PasswordMemory)
	if err := n.passwords.Acquire(ctx, w); err != nil {
		return false, fmt.Errorf("%w: waiting to check a password: %v", ErrUnavailable, err)
	}
	defer n.passwords.Release(w)
	return fsm.VerifyPassword(hash, password), nil
}

// DefaultPasswordMemory is Config.PasswordMemory's default: six argon2id
// checks at the cost new passwords get (19 MiB), more than two cores
// serve at once.
const DefaultPasswordMemory = 128 << 20

// minPasswordWeight is the least share of the budget one check takes, so
// that cheap hashes (bcrypt) still do not run more checks at once than
// the cores can serve.
const minPasswordWeight = 16 << 20

// dummyHash is a password hash of nothing anyone knows, verified against
// for unknown users so that they cost what a known user costs.
func (n *Node) dummyHash() string {
	n.dummyOnce.Do(func() {
		h, err := fsm.HashPassword(deliveryID())
		if err == nil {
			n.dummy = h
		}
	})
	return n.dummy
}

// watchers fans out change notifications from the apply path to IMAP
// and POP3 sessions, per mailbox.
type watchers struct {
	mu sync.Mutex
	m  map[string]map[chan struct{}]struct{}
}

// notify wakes every watcher of the given mailboxes without blocking.
func (w *watchers) notify(keys []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range keys {
		for ch := range w.m[k] {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// notifyAll wakes every watcher: a restored snapshot may have changed
// any mailbox, so that an IDLE session reports what it brought at once
// instead of at its next periodic poll.
func (w *watchers) notifyAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, chans := range w.m {
		for ch := range chans {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// Watch returns a channel that receives after each applied change to the
// mailbox's folders or messages (coalesced: buffer of one).
func (n *Node) Watch(addr string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	a, err := fsm.ParseAddress(addr)
	if err != nil {
		return ch, func() {}
	}
	key := a.Key()
	w := &n.watchers
	w.mu.Lock()
	if w.m == nil {
		w.m = map[string]map[chan struct{}]struct{}{}
	}
	if w.m[key] == nil {
		w.m[key] = map[chan struct{}]struct{}{}
	}
	w.m[key][ch] = struct{}{}
	w.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			w.mu.Lock()
			delete(w.m[key], ch)
			if len(w.m[key]) == 0 {
				delete(w.m, key)
			}
			w.mu.Unlock()
		})
	}
}

// AccountActive reports whether a login (Authenticate's) still holds:
// nil, or an error wrapping ErrAuthFailed when its mailbox has been
// disabled or removed since, or ErrPasswordChanged (which wraps
// ErrAuthFailed too) when the mailbox's password has been changed since
// (the stored hash is not the one the login matched: Login.Credential).
// A change of quota leaves the login be. ErrUnavailable when the
// directory cannot be read. It reads this node's state without a
// barrier: it runs for every message a session submits, and a change
// reaches every node within a heartbeat. The hash comes with the
// record's read (fsm.State.Mailbox): comparing it costs no further read.
func (n *Node) AccountActive(_ context.Context, login Login) error {
	if err := n.removedNow(); err != nil {
		// Its replica no longer follows the directory, nor the mail.
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	addr := login.Address
	mb, err := n.state.Mailbox(addr)
	switch {
	case errors.Is(err, fsm.ErrNotFound):
		return fmt.Errorf("%w: %s no longer exists", ErrAuthFailed, addr)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case mb.Disabled:
		return fmt.Errorf("%w: %s is disabled", ErrAuthFailed, addr)
	case CredentialOf(mb.PasswordHash) != login.Credential:
		return fmt.Errorf("%w: %s", ErrPasswordChanged, addr)
	}
	return nil
}
