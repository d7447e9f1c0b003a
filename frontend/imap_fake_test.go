package frontend

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"powermail/fsm"
	"powermail/node"
)

// IMAPMemStore is an in-memory MailStore with the semantics the frontend
// relies on (UIDs ascend and are never reused, ModSeq grows with every
// change, Watch fires after every change, INBOX is case-insensitive). It
// lets the IMAP tests run without a cluster, and it is exported (from a
// test file) so that the external test package can run the same suite
// against it and against nodetest.
type IMAPMemStore struct {
	mu       sync.Mutex
	index    uint64 // the "raft index": ModSeq and UIDVALIDITY source
	users    map[string]*imapMemUser
	bodies   map[string][]byte
	watchers map[string]map[chan struct{}]struct{}

	// Fail, if set, is called first by every method with its name; a
	// non-nil result is returned as that method's error.
	Fail func(op string) error
	// BodyErr, if set, makes every opened body fail with it after
	// BodyErrAfter bytes (a replica failing verification mid-read).
	BodyErr      error
	BodyErrAfter int64
}

type imapMemUser struct {
	password string
	quota    int64
	folders  map[string]*imapMemFolder
}

type imapMemFolder struct {
	rec  node.Folder
	msgs []node.StoredMessage
}

// NewIMAPMemStore returns an empty store.
func NewIMAPMemStore() *IMAPMemStore {
	return &IMAPMemStore{users: map[string]*imapMemUser{}, bodies: map[string][]byte{},
		watchers: map[string]map[chan struct{}]struct{}{}}
}

var _ MailStore = (*IMAPMemStore)(nil)

// AddMailbox creates a mailbox with the default folders.
func (m *IMAPMemStore) AddMailbox(addr, password string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := &imapMemUser{password: password, folders: map[string]*imapMemFolder{}}
	m.users[strings.ToLower(addr)] = u
	for _, f := range []struct{ name, use string }{{"INBOX", ""}, {"Sent", `\Sent`}, {"Drafts", `\Drafts`}, {"Trash", `\Trash`}, {"Junk", `\Junk`}} {
		m.index++
		u.folders[f.name] = &imapMemFolder{rec: node.Folder{Name: f.name, ID: m.index, UIDValidity: uint32(m.index), UIDNext: 1,
			SpecialUse: f.use, Subscribed: true, ModSeq: m.index}}
	}
}

// Deliver stores raw in the INBOX of each address.
func (m *IMAPMemStore) Deliver(raw string, addrs ...string) error {
	for _, a := range addrs {
		if _, err := m.Append(context.Background(), strings.ToLower(a), "INBOX", nil, time.Time{}, strings.NewReader(raw)); err != nil {
			return err
		}
	}
	return nil
}

func (m *IMAPMemStore) fail(op string) error {
	if m.Fail != nil {
		return m.Fail(op)
	}
	return nil
}

func (m *IMAPMemStore) notifyLocked(addr string) {
	for ch := range m.watchers[addr] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (m *IMAPMemStore) user(addr string) (*imapMemUser, error) {
	u := m.users[addr]
	if u == nil {
		return nil, fmt.Errorf("mailbox %s: %w", addr, node.ErrAuthFailed)
	}
	return u, nil
}

func imapMemCanon(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

func (m *IMAPMemStore) folder(addr, name string) (*imapMemUser, *imapMemFolder, error) {
	u, err := m.user(addr)
	if err != nil {
		return nil, nil, err
	}
	f := u.folders[imapMemCanon(name)]
	if f == nil {
		return u, nil, fmt.Errorf("folder %q: %w", name, node.ErrNoFolder)
	}
	return u, f, nil
}

// touchLocked bumps the index, recounts f and notifies watchers.
// expected is folder, refusing one that is not the folder expect names.
func (m *IMAPMemStore) expected(addr, name string, expect []node.FolderCheck) (*imapMemUser, *imapMemFolder, error) {
	u, f, err := m.folder(addr, name)
	if err == nil && len(expect) > 0 && (f.rec.ID != expect[0].ID || f.rec.UIDValidity != expect[0].UIDValidity) {
		err = fmt.Errorf("%w: %w: %s is another folder now", node.ErrNoFolder, node.ErrFolderChanged, name)
	}
	return u, f, err
}

func (m *IMAPMemStore) touchLocked(addr string, f *imapMemFolder) {
	m.index++
	f.rec.ModSeq = m.index
	f.rec.Messages, f.rec.Bytes, f.rec.Unseen, f.rec.Deleted = int64(len(f.msgs)), 0, 0, 0
	for _, msg := range f.msgs {
		f.rec.Bytes += msg.Size
		if !slices.Contains(msg.Flags, `\Seen`) {
			f.rec.Unseen++
		}
		if slices.Contains(msg.Flags, `\Deleted`) {
			f.rec.Deleted++
		}
	}
	m.notifyLocked(addr)
}

func (m *IMAPMemStore) Authenticate(_ context.Context, user, password string) (node.Login, error) {
	if err := m.fail("Authenticate"); err != nil {
		return node.Login{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	addr := strings.ToLower(user)
	if u := m.users[addr]; u == nil || u.password != password {
		return node.Login{}, node.ErrAuthFailed
	}
	return node.Login{Address: addr}, nil
}

func (m *IMAPMemStore) Folders(_ context.Context, addr string) ([]node.Folder, error) {
	if err := m.fail("Folders"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.user(addr)
	if err != nil {
		return nil, err
	}
	var out []node.Folder
	for _, f := range u.folders {
		out = append(out, f.rec)
	}
	slices.SortFunc(out, func(a, b node.Folder) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (m *IMAPMemStore) Folder(_ context.Context, addr, name string) (node.Folder, error) {
	if err := m.fail("Folder"); err != nil {
		return node.Folder{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, f, err := m.folder(addr, name)
	if err != nil {
		return node.Folder{}, err
	}
	return f.rec, nil
}

// Usage counts the octets of every message, with no quota unless one
// was set with SetQuota.
func (m *IMAPMemStore) Usage(_ context.Context, addr string) (node.Usage, error) {
	if err := m.fail("Usage"); err != nil {
		return node.Usage{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.user(addr)
	if err != nil {
		return node.Usage{}, err
	}
	out := node.Usage{QuotaBytes: u.quota}
	for _, f := range u.folders {
		for _, msg := range f.msgs {
			out.UsedBytes += int64(msg.Size)
		}
	}
	return out, nil
}

// SetQuota sets a mailbox's quota (0: none) for Usage.
func (m *IMAPMemStore) SetQuota(addr string, quota int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, err := m.user(addr); err == nil {
		u.quota = quota
	}
}

func (m *IMAPMemStore) View(_ context.Context, addr, name string) (node.FolderView, error) {
	if err := m.fail("View"); err != nil {
		return node.FolderView{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, f, err := m.folder(addr, name)
	if err != nil {
		return node.FolderView{}, err
	}
	v := node.FolderView{Folder: f.rec}
	for _, msg := range f.msgs {
		msg.Flags = slices.Clone(msg.Flags)
		v.Messages = append(v.Messages, msg)
	}
	return v, nil
}

func imapMemCheckName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") ||
		strings.ContainsAny(name, "*%\x00") {
		return fmt.Errorf("folder name %q: %w", name, node.ErrInvalidArgument)
	}
	return nil
}

func (m *IMAPMemStore) CreateFolder(_ context.Context, addr, name, specialUse string) error {
	if err := m.fail("CreateFolder"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, err := m.user(addr)
	if err != nil {
		return err
	}
	name = imapMemCanon(strings.TrimSuffix(name, "/"))
	if err := imapMemCheckName(name); err != nil {
		return err
	}
	if u.folders[name] != nil {
		return fmt.Errorf("folder %q: %w", name, node.ErrFolderExists)
	}
	m.index++
	f := &imapMemFolder{rec: node.Folder{Name: name, ID: m.index, UIDValidity: uint32(m.index), UIDNext: 1,
		SpecialUse: specialUse, Subscribed: true}}
	u.folders[name] = f
	m.touchLocked(addr, f)
	return nil
}

func (m *IMAPMemStore) DeleteFolder(_ context.Context, addr, name string) error {
	return m.deleteFolder(addr, name, nil)
}

// DeleteFolderIf deletes the folder as DeleteFolder does, under the
// store's lock only if cond holds, as the node checks it in one entry.
func (m *IMAPMemStore) DeleteFolderIf(_ context.Context, addr, name string, cond node.FolderDeleteIf) error {
	return m.deleteFolder(addr, name, &cond)
}

func (m *IMAPMemStore) deleteFolder(addr, name string, cond *node.FolderDeleteIf) error {
	if err := m.fail("DeleteFolder"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if imapMemCanon(name) == "INBOX" {
		return fmt.Errorf("INBOX: %w", node.ErrInvalidArgument)
	}
	u, f, err := m.folder(addr, name)
	if err != nil {
		return err
	}
	if cond != nil {
		child := false
		for other := range u.folders {
			child = child || strings.HasPrefix(other, f.rec.Name+"/")
		}
		if f.rec.ID != cond.ID || f.rec.UIDValidity != cond.UIDValidity || cond.UIDNext != 0 && f.rec.UIDNext != cond.UIDNext ||
			cond.Empty && len(f.msgs) > 0 || cond.NoChild && child {
			return fmt.Errorf("folder %q: %w", name, node.ErrDeleteCondition)
		}
	}
	delete(u.folders, f.rec.Name)
	m.index++
	m.notifyLocked(addr)
	return nil
}

func (m *IMAPMemStore) RenameFolder(_ context.Context, addr, from, to string) error {
	if err := m.fail("RenameFolder"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, src, err := m.folder(addr, from)
	if err != nil {
		return err
	}
	from, to = imapMemCanon(from), imapMemCanon(strings.TrimSuffix(to, "/"))
	if err := imapMemCheckName(to); err != nil || to == "INBOX" || to == from || strings.HasPrefix(to, from+"/") {
		return fmt.Errorf("rename %q to %q: %w", from, to, node.ErrInvalidArgument)
	}
	if u.folders[to] != nil {
		return fmt.Errorf("folder %q: %w", to, node.ErrFolderExists)
	}
	if from == "INBOX" {
		m.index++
		dst := &imapMemFolder{rec: node.Folder{Name: to, ID: m.index, UIDValidity: uint32(m.index), UIDNext: src.rec.UIDNext, Subscribed: true},
			msgs: src.msgs}
		src.msgs = nil
		u.folders[to] = dst
		m.touchLocked(addr, dst)
		m.touchLocked(addr, src)
		return nil
	}
	for name, f := range u.folders {
		if name == from || strings.HasPrefix(name, from+"/") {
			delete(u.folders, name)
			f.rec.Name = to + strings.TrimPrefix(name, from)
			u.folders[f.rec.Name] = f
			m.touchLocked(addr, f)
		}
	}
	return nil
}

func (m *IMAPMemStore) SubscribeFolder(_ context.Context, addr, name string, subscribed bool) error {
	if err := m.fail("SubscribeFolder"); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, f, err := m.folder(addr, name)
	if err != nil {
		return err
	}
	f.rec.Subscribed = subscribed
	return nil
}

func imapMemCleanFlags(flags []string) []string {
	out := slices.Clone(flags)
	slices.Sort(out)
	return slices.Compact(out)
}

func (m *IMAPMemStore) Append(_ context.Context, addr, folder string, flags []string, date time.Time, body io.Reader) (node.AppendResult, error) {
	if err := m.fail("Append"); err != nil {
		return node.AppendResult{}, err
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return node.AppendResult{}, fmt.Errorf("reading body: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, f, err := m.folder(addr, folder)
	if err != nil {
		return node.AppendResult{}, err
	}
	if date.IsZero() {
		date = time.Now()
	}
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:])
	m.bodies[hash] = raw
	uid := f.rec.UIDNext
	f.rec.UIDNext++
	f.msgs = append(f.msgs, node.StoredMessage{UID: uid, Hash: hash, Size: int64(len(raw)), InternalDate: date.UnixMilli(),
		Flags: imapMemCleanFlags(flags)})
	m.touchLocked(addr, f)
	return node.AppendResult{UIDValidity: f.rec.UIDValidity, UID: uid}, nil
}

func (m *IMAPMemStore) StoreFlags(_ context.Context, addr, folder string, uids []uint32, op node.FlagOp, flags []string, expect ...node.FolderCheck) ([]node.StoredMessage, error) {
	if err := m.fail("StoreFlags"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, f, err := m.expected(addr, folder, expect)
	if err != nil {
		return nil, err
	}
	var out []node.StoredMessage
	in := uidSet(uids)
	for i := range f.msgs {
		msg := &f.msgs[i]
		if !in[msg.UID] {
			continue
		}
		var next []string
		switch op {
		case node.FlagsSet:
			next = imapMemCleanFlags(flags)
		case node.FlagsAdd:
			next = imapMemCleanFlags(append(slices.Clone(msg.Flags), flags...))
		case node.FlagsRemove:
			next = slices.DeleteFunc(slices.Clone(msg.Flags), func(s string) bool { return slices.Contains(flags, s) })
		}
		if !slices.Equal(next, msg.Flags) {
			msg.Flags = next
			c := *msg
			c.Flags = slices.Clone(next)
			out = append(out, c)
		}
	}
	if len(out) > 0 {
		m.touchLocked(addr, f)
	}
	return out, nil
}

func (m *IMAPMemStore) Expunge(_ context.Context, addr, folder string, uids []uint32, onlyDeleted bool, expect ...node.FolderCheck) ([]uint32, error) {
	if err := m.fail("Expunge"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, f, err := m.expected(addr, folder, expect)
	if err != nil {
		return nil, err
	}
	var removed []uint32
	in := uidSet(uids)
	f.msgs = slices.DeleteFunc(f.msgs, func(msg node.StoredMessage) bool {
		if uids != nil && !in[msg.UID] {
			return false
		}
		if onlyDeleted && !slices.Contains(msg.Flags, `\Deleted`) {
			return false
		}
		removed = append(removed, msg.UID)
		return true
	})
	if len(removed) > 0 {
		m.touchLocked(addr, f)
	}
	return removed, nil
}

func (m *IMAPMemStore) Copy(_ context.Context, addr, src, dst string, uids []uint32, move bool, expect ...node.FolderCheck) (node.CopyResult, error) {
	if err := m.fail("Copy"); err != nil {
		return node.CopyResult{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, s, err := m.expected(addr, src, expect)
	if err != nil {
		return node.CopyResult{}, err
	}
	_, d, err := m.folder(addr, dst)
	if err != nil {
		return node.CopyResult{}, err
	}
	res := node.CopyResult{UIDValidity: d.rec.UIDValidity}
	var keep []node.StoredMessage
	in := uidSet(uids)
	for _, msg := range s.msgs {
		if !in[msg.UID] {
			keep = append(keep, msg)
			continue
		}
		c := msg
		c.Flags = slices.Clone(msg.Flags)
		c.UID = d.rec.UIDNext
		d.rec.UIDNext++
		d.msgs = append(d.msgs, c)
		res.SrcUIDs = append(res.SrcUIDs, msg.UID)
		res.DstUIDs = append(res.DstUIDs, c.UID)
	}
	if len(res.SrcUIDs) > 0 {
		m.touchLocked(addr, d)
		if move {
			s.msgs = keep
			m.touchLocked(addr, s)
		}
	}
	return res, nil
}

// imapMemBody is an open body.
type imapMemBody struct {
	*bytes.Reader
	err   error
	after int64
}

func (imapMemBody) Close() error { return nil }

func (b imapMemBody) Read(p []byte) (int, error) {
	if b.err != nil {
		pos := b.Reader.Size() - int64(b.Reader.Len())
		if pos >= b.after {
			return 0, b.err
		}
		p = p[:min(int64(len(p)), b.after-pos)]
	}
	return b.Reader.Read(p)
}

func (m *IMAPMemStore) OpenBody(_ context.Context, hash string) (node.Body, error) {
	if err := m.fail("OpenBody"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	raw, ok := m.bodies[hash]
	if !ok {
		return nil, errors.New("body not found")
	}
	return imapMemBody{Reader: bytes.NewReader(raw), err: m.BodyErr, after: m.BodyErrAfter}, nil
}

func (m *IMAPMemStore) Watch(addr string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.watchers[addr] == nil {
		m.watchers[addr] = map[chan struct{}]struct{}{}
	}
	m.watchers[addr][ch] = struct{}{}
	return ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.watchers[addr], ch)
	}
}

func (m *IMAPMemStore) LockMaildrop(context.Context, string, string) (func(context.Context) error, error) {
	return nil, errors.New("IMAPMemStore: no maildrop locks")
}

// uidSet is uids as a set: a scan of the list per message made large
// folders quadratic.
func uidSet(uids []uint32) map[uint32]bool {
	in := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		in[u] = true
	}
	return in
}

// POP3UIDLs: the store keeps no unique-ids from another server.
func (m *IMAPMemStore) POP3UIDLs(context.Context, string, uint64, fsm.UIDRange) (map[uint32]string, error) {
	return map[uint32]string{}, nil
}
