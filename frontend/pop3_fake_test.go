package frontend_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"powermail/frontend"
	"powermail/fsm"
	"powermail/node"
)

// pop3Fake is an in-memory MailStore with just what POP3 uses, plus
// failure injection. Mailbox addresses are lower-cased user names.
type pop3Fake struct {
	mu          sync.Mutex
	passwords   map[string]string
	inbox       map[string][]node.StoredMessage
	bodies      map[string]string
	locks       map[string]string // addr -> holder
	uidValidity uint32
	nextUID     uint32

	// Injected failures (nil: none).
	authErr, lockErr, viewErr, expungeErr, openErr error
	// openDelay makes OpenBody wait (or fail when ctx ends first).
	openDelay time.Duration
	// bodyErrAfter makes body reads fail after this many octets (0: never).
	bodyErrAfter int

	expunges   [][]uint32
	lockCalls  int
	unlockCall int
}

var _ frontend.MailStore = (*pop3Fake)(nil)

func newPOP3Fake() *pop3Fake {
	return &pop3Fake{
		passwords:   map[string]string{},
		inbox:       map[string][]node.StoredMessage{},
		bodies:      map[string]string{},
		locks:       map[string]string{},
		uidValidity: 1234,
		nextUID:     1,
	}
}

func (f *pop3Fake) addUser(addr, password string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.passwords[strings.ToLower(addr)] = password
}

// add appends body to addr's INBOX and returns its UID.
func (f *pop3Fake) add(addr, body string) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	sum := sha256.Sum256([]byte(body))
	h := hex.EncodeToString(sum[:])
	f.bodies[h] = body
	uid := f.nextUID
	f.nextUID++
	addr = strings.ToLower(addr)
	f.inbox[addr] = append(f.inbox[addr], node.StoredMessage{UID: uid, Hash: h, Size: int64(len(body)), InternalDate: time.Now().UnixMilli()})
	return uid
}

func (f *pop3Fake) set(fn func(f *pop3Fake)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *pop3Fake) uids(addr string) []uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []uint32
	for _, m := range f.inbox[strings.ToLower(addr)] {
		out = append(out, m.UID)
	}
	return out
}

func (f *pop3Fake) holder(addr string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.locks[strings.ToLower(addr)]
}

func (f *pop3Fake) Authenticate(ctx context.Context, user, password string) (node.Login, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.authErr != nil {
		return node.Login{}, f.authErr
	}
	addr := strings.ToLower(user)
	if p, ok := f.passwords[addr]; !ok || p != password {
		return node.Login{}, fmt.Errorf("fake: %w", node.ErrAuthFailed)
	}
	return node.Login{Address: addr}, nil
}

func (f *pop3Fake) View(ctx context.Context, addr, name string) (node.FolderView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.viewErr != nil {
		return node.FolderView{}, f.viewErr
	}
	if name != "INBOX" {
		return node.FolderView{}, node.ErrNoFolder
	}
	msgs := append([]node.StoredMessage(nil), f.inbox[addr]...)
	return node.FolderView{Folder: node.Folder{Name: "INBOX", UIDValidity: f.uidValidity, UIDNext: f.nextUID}, Messages: msgs}, nil
}

func (f *pop3Fake) Expunge(ctx context.Context, addr, folder string, uids []uint32, onlyDeleted bool, _ ...node.FolderCheck) ([]uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.expungeErr != nil {
		return nil, f.expungeErr
	}
	f.expunges = append(f.expunges, append([]uint32(nil), uids...))
	drop := map[uint32]bool{}
	for _, u := range uids {
		drop[u] = true
	}
	var keep []node.StoredMessage
	var removed []uint32
	for _, m := range f.inbox[addr] {
		if drop[m.UID] {
			removed = append(removed, m.UID)
		} else {
			keep = append(keep, m)
		}
	}
	f.inbox[addr] = keep
	return removed, nil
}

func (f *pop3Fake) OpenBody(ctx context.Context, hash string) (node.Body, error) {
	f.mu.Lock()
	err, delay, failAfter := f.openErr, f.openDelay, f.bodyErrAfter
	body, ok := f.bodies[hash]
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %v", node.ErrUnavailable, ctx.Err())
		}
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("fake: no such body")
	}
	return &pop3FakeBody{Reader: bytes.NewReader([]byte(body)), failAfter: failAfter}, nil
}

type pop3FakeBody struct {
	*bytes.Reader
	failAfter int
	read      int
}

func (b *pop3FakeBody) Read(p []byte) (int, error) {
	if b.failAfter > 0 {
		if b.read >= b.failAfter {
			return 0, errors.New("fake: checksum mismatch")
		}
		p = p[:min(len(p), b.failAfter-b.read)]
	}
	n, err := b.Reader.Read(p)
	b.read += n
	return n, err
}

func (b *pop3FakeBody) Close() error { return nil }

func (f *pop3Fake) LockMaildrop(ctx context.Context, addr, holder string) (func(context.Context) error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lockCalls++
	if f.lockErr != nil {
		return nil, f.lockErr
	}
	if h := f.locks[addr]; h != "" {
		return nil, fmt.Errorf("fake: held by %s: %w", h, node.ErrLocked)
	}
	f.locks[addr] = holder
	release := func() {
		if f.locks[addr] == holder {
			delete(f.locks, addr)
		}
	}
	// A lease: it lapses when ctx ends.
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		release()
	})
	return func(context.Context) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.unlockCall++
		release()
		return nil
	}, nil
}

// Not used by POP3.

var errPOP3FakeUnused = errors.New("fake: not used by POP3")

func (f *pop3Fake) Folders(ctx context.Context, addr string) ([]node.Folder, error) {
	return nil, errPOP3FakeUnused
}

func (f *pop3Fake) Folder(ctx context.Context, addr, name string) (node.Folder, error) {
	return node.Folder{}, errPOP3FakeUnused
}

func (f *pop3Fake) Usage(ctx context.Context, addr string) (node.Usage, error) {
	return node.Usage{}, errPOP3FakeUnused
}

func (f *pop3Fake) CreateFolder(ctx context.Context, addr, name, specialUse string) error {
	return errPOP3FakeUnused
}

func (f *pop3Fake) DeleteFolder(ctx context.Context, addr, name string) error {
	return errPOP3FakeUnused
}

func (f *pop3Fake) DeleteFolderIf(ctx context.Context, addr, name string, cond node.FolderDeleteIf) error {
	return errPOP3FakeUnused
}

func (f *pop3Fake) RenameFolder(ctx context.Context, addr, from, to string) error {
	return errPOP3FakeUnused
}

func (f *pop3Fake) SubscribeFolder(ctx context.Context, addr, name string, subscribed bool) error {
	return errPOP3FakeUnused
}

func (f *pop3Fake) Append(ctx context.Context, addr, folder string, flags []string, date time.Time, body io.Reader) (node.AppendResult, error) {
	return node.AppendResult{}, errPOP3FakeUnused
}

func (f *pop3Fake) StoreFlags(ctx context.Context, addr, folder string, uids []uint32, op node.FlagOp, flags []string, _ ...node.FolderCheck) ([]node.StoredMessage, error) {
	return nil, errPOP3FakeUnused
}

func (f *pop3Fake) Copy(ctx context.Context, addr, src, dst string, uids []uint32, move bool, _ ...node.FolderCheck) (node.CopyResult, error) {
	return node.CopyResult{}, errPOP3FakeUnused
}

func (f *pop3Fake) Watch(addr string) (<-chan struct{}, func()) {
	return make(chan struct{}), func() {}
}

// POP3UIDLs: the store keeps no unique-ids from another server.
func (f *pop3Fake) POP3UIDLs(context.Context, string, uint64, fsm.UIDRange) (map[uint32]string, error) {
	return map[uint32]string{}, nil
}
