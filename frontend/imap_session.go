package frontend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"powermail/node"
)

// imapSession is one IMAP connection: the authenticated mailbox address
// and, in the selected state, the session's own snapshot of a folder.
//
// Invariants:
//   - Every MailStore call passes s.addr, the address the Authenticator
//     returned; nothing a client sends can name another mailbox. Folder
//     names are only ever looked up inside s.addr.
//   - Methods run one at a time (imapserver reads the next command only
//     after the previous one finished), except Idle, which runs on its own
//     goroutine while the connection waits for DONE, and Close, which can
//     race an Idle that is winding down. mu serialises all of them.
//   - Every error returned is an *imap.Error or a failed write to the
//     client (after which the connection is closed).
type imapSession struct {
	srv    *IMAPServer
	conn   *imapserver.Conn
	raw    *imapConn       // nil only if the library was given another conn
	ip     string          // the per-IP limit's key (ipKey)
	peer   string          // the client's IP, for logins (peerIP)
	ctx    context.Context // cancelled by Close and by IMAPServer.Close
	cancel context.CancelFunc

	mu     sync.Mutex
	log    *slog.Logger
	addr   string        // "" until login
	userIP string        // the per-mailbox-and-address slot taken at login, or ""
	sel    *imapSelected // nil unless a folder is selected
	closed bool
	// calls counts commands that reached a Session method; Poll compares
	// it with its own last count to tell a bare NOOP or CHECK (nothing
	// but the poll) from the poll after another command. A command that
	// ends without a poll settles the count (imapCommands).
	calls, polledAt int
	// storedAt is calls as of the last APPEND that stored its message,
	// and afterStore is set for the poll that follows it: a selected
	// folder found gone then ends the session at the next poll, not this
	// one (folderVanished), so the stored message gets its tagged OK.
	storedAt   int
	afterStore bool
}

var (
	_ imapserver.SessionIMAP4rev2   = (*imapSession)(nil)
	_ imapserver.SessionAppendLimit = (*imapSession)(nil)
)

// callCtx bounds one MailStore call.
func (s *imapSession) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.srv.cfg.CommandTimeout)
}

// Close ends the session: it drops the selected folder's watch and frees
// the connection's slot, unless STARTTLS passed it to the TLS session.
func (s *imapSession) Close() error {
	s.cancel() // first: a poll in progress (IDLE) returns at once
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.srv.trackConn(s.raw, false)
	if s.userIP != "" {
		s.srv.releaseUserIP(s.userIP)
	}
	s.unselectLocked()
	if s.raw == nil || !s.raw.slotMoved.Load() {
		s.srv.release(s.ip)
	}
	if s.addr != "" {
		s.log.Debug("imap: session closed")
	}
	return nil
}

// secure reports whether the connection runs under TLS (implicit, or
// after STARTTLS).
func (s *imapSession) secure() bool {
	return s.raw != nil && s.raw.secure
}

var _ imapserver.SessionSASL = (*imapSession)(nil)

// AuthenticateMechanisms is PLAIN only: the directory keeps password
// hashes, which no challenge-response mechanism can check.
func (s *imapSession) AuthenticateMechanisms() []string { return []string{sasl.Plain} }

// Authenticate is AUTHENTICATE PLAIN (RFC 4616) whose authorization
// identity is empty or the user's own account, however spelt
// (node.AccountKey), as SMTP submission and POP3 take it; go-imap's own
// took only the login name's very octets. Acting as another user is
// refused.
func (s *imapSession) Authenticate(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
	}
	return sasl.NewPlainServer(func(identity, user, password string) error {
		if identity != "" && node.AccountKey(identity) != node.AccountKey(user) {
			return &imap.Error{
				Type: imap.StatusResponseTypeNo,
				Code: imap.ResponseCodeAuthorizationFailed,
				Text: "SASL identity not supported",
			}
		}
		return s.Login(user, password)
	}), nil
}

// Login checks a password through the shared Authenticator (LOGIN and
// AUTHENTICATE PLAIN both end here). The library has already refused it
// without TLS unless insecure auth is allowed; the Authenticator checks
// again.
func (s *imapSession) Login(user, password string) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	key := ""
	admit := func(addr string) error {
		if s.ip == "" {
			return nil
		}
		key = node.AccountKey(addr) + "\x00" + s.ip
		if !s.srv.takeUserIP(key) {
			key = ""
			s.log.Info("imap: login over the per-mailbox-and-address limit", "user", addr, "limit", s.srv.cfg.MaxConnsPerUserIP)
			return ErrSessionLimit
		}
		return nil
	}
	login, err := s.srv.auth.LoginAdmit(ctx, s.peer, user, password, s.secure(), admit)
	switch {
	case err == nil:
	case errors.Is(err, ErrSessionLimit):
		return imapNo(imap.ResponseCodeUnavailable, "Too many connections to this mailbox from your address")
	case errors.Is(err, ErrInsecureAuth):
		return imapNo(imap.ResponseCodePrivacyRequired, "TLS is required to authenticate")
	case errors.Is(err, node.ErrUnavailable):
		s.log.Info("imap: login unavailable", "err", err)
		return imapNo(imap.ResponseCodeUnavailable, "Temporarily unavailable, try again")
	case errors.Is(err, node.ErrAuthFailed):
		return imapserver.ErrAuthFailed
	default:
		s.log.Error("imap: login: unexpected error", "err", err)
		return imapNo(imap.ResponseCodeUnavailable, "Temporarily unavailable, try again")
	}
	addr := login.Address
	s.mu.Lock()
	s.addr, s.userIP = addr, key
	s.log = s.log.With("user", addr)
	s.mu.Unlock()
	if s.raw != nil {
		s.raw.armAccountCheck(login)
		s.raw.authed.Store(true) // from now on the autologout timer is IdleTimeout
	}
	s.log.Info("imap: login", "tls", s.secure())
	return nil
}

// user returns the authenticated address, or an error before login.
func (s *imapSession) user() (string, error) {
	s.calls++
	if s.addr == "" {
		return "", errIMAPNotAuthed
	}
	return s.addr, nil
}

// imapFolderName checks a mailbox name sent by the client and returns it
// as the store spells it ("INBOX" is case-insensitive, RFC 9051 section
// 5.1). Names with control characters never reach the store.
func imapFolderName(name string) (string, bool) {
	if name == "" || len(name) > 1024 || !utf8.ValidString(name) {
		return "", false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", false
		}
	}
	if strings.EqualFold(name, "INBOX") {
		return "INBOX", true
	}
	return name, true
}

// imapNewFolderName is imapFolderName for names being created (CREATE,
// RENAME's target). It also refuses names that look like a path or a
// namespace, so that no client is led to believe "../x" or "#shared/x"
// means anything but a personal folder: our only namespace is the
// personal one (see Namespace).
func imapNewFolderName(name string) (string, error) {
	name = strings.TrimSuffix(name, "/") // RFC 9051 section 6.3.4
	n, ok := imapFolderName(name)
	if !ok || strings.HasPrefix(n, "#") || strings.HasPrefix(n, "~") {
		return "", imapNo(imap.ResponseCodeCannot, "Invalid mailbox name")
	}
	// What the store refuses in a new name (wildcards, RFC 9051 section
	// 5.1; length) is refused here, before CREATE or RENAME makes any
	// of its superior names (createSuperiors).
	if len(n) > node.MaxFolderName || strings.ContainsAny(n, "*%") {
		return "", imapNo(imap.ResponseCodeCannot, "Invalid mailbox name")
	}
	for _, level := range strings.Split(n, "/") {
		if level == "" || level == "." || level == ".." {
			return "", imapNo(imap.ResponseCodeCannot, "Invalid mailbox name")
		}
	}
	return n, nil
}

// lookupFolder returns the store name for a mailbox the command reads or
// writes; a name that cannot exist is simply not there.
func lookupFolder(name string, missing imap.ResponseCode) (string, error) {
	n, ok := imapFolderName(name)
	if !ok {
		return "", imapNo(missing, "No such mailbox")
	}
	return n, nil
}

// Namespace has one personal namespace, "" with delimiter "/" (RFC 2342).
// No other users' or shared namespaces exist.
func (s *imapSession) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: imapDelim}}}, nil
}

// imapDelim is the hierarchy delimiter (RFC 9051 section 5.1.1).
const imapDelim = '/'

// AppendLimit is advertised as APPENDLIMIT=n and enforced by the library
// before the literal is accepted. Before login it is 0: APPEND belongs to
// the authenticated state (RFC 9051 §6.3.12), and the library asks for
// the message ("+") before it checks the state, only to drop it, so an
// unauthenticated client could have it read up to MaxAppendBytes per
// command. At 0 any message is refused before "+" (NO [TOOBIG], RFC 9051
// §7.5). The library asks at the APPEND, after the commands before it
// ran, so an APPEND pipelined behind its LOGIN gets the real limit; and
// APPENDLIMIT is advertised only after login.
func (s *imapSession) AppendLimit() uint32 {
	s.mu.Lock()
	authed := s.addr != ""
	s.mu.Unlock()
	if !authed {
		return 0
	}
	return uint32(s.srv.cfg.MaxAppendBytes)
}

var imapSpecialUses = map[imap.MailboxAttr]bool{
	imap.MailboxAttrAll: true, imap.MailboxAttrArchive: true, imap.MailboxAttrDrafts: true,
	imap.MailboxAttrFlagged: true, imap.MailboxAttrJunk: true, imap.MailboxAttrSent: true,
	imap.MailboxAttrTrash: true,
}

// Create creates a folder, with at most one special use (RFC 6154 section
// 3, CREATE-SPECIAL-USE).
func (s *imapSession) Create(name string, options *imap.CreateOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr, err := s.user()
	if err != nil {
		return err
	}
	n, err := imapNewFolderName(name)
	if err != nil {
		return err
	}
	if n == "INBOX" {
		return imapNo(imap.ResponseCodeAlreadyExists, "INBOX always exists")
	}
	var use string
	if options != nil && len(options.SpecialUse) > 0 {
		if len(options.SpecialUse) > 1 || !imapSpecialUses[options.SpecialUse[0]] {
			return imapNo(imapCodeUseAttr, "Unsupported special use (one of \\All \\Archive \\Drafts \\Flagged \\Junk \\Sent \\Trash)")
		}
		use = string(options.SpecialUse[0])
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	made, err := s.createSuperiors(ctx, addr, n, "", 1)
	if err != nil {
		return err
	}
	if err := s.srv.store.CreateFolder(ctx, addr, n, use); err != nil {
		s.undoSuperiors(addr, made, err)
		return s.storeError("create", err, imap.ResponseCodeNonExistent)
	}
	return nil
}

// createSuperiors creates the superior names of n that do not exist,
// shallowest first and without a special use: the server SHOULD create
// those a CREATE needs (RFC 9051 section 6.3.4, RFC 3501 section
// 6.3.3; RENAME likewise, sections 6.3.6 and 6.3.5). Without them a
// client that creates "Archives/2024" in one command showed the user an
// "Archives" that could not be opened, renamed or deleted. A superior
// another session creates meanwhile is no error. Nothing is created when
// n exists, or when from (a RENAME's source) does not: the command then
// fails and changes nothing. Nor is anything created when the superiors
// and adds more folders (the one a CREATE makes) would pass
// node.MaxFolders: the command is refused with CANNOT, as the store
// refuses a folder past it. It returns the names it made, which the caller takes back
// if its own step fails (undoSuperiors); if one of them fails, it takes
// back those before it itself.
func (s *imapSession) createSuperiors(ctx context.Context, addr, n, from string, adds int) ([]string, error) {
	if !strings.ContainsRune(n, imapDelim) {
		return nil, nil
	}
	folders, err := s.srv.store.Folders(ctx, addr)
	if err != nil {
		return nil, s.storeError("create", err, imap.ResponseCodeNonExistent)
	}
	have := make(map[string]bool, len(folders))
	for _, f := range folders {
		have[f.Name] = true
	}
	if have[n] || (from != "" && !have[from]) {
		return nil, nil
	}
	missing := imapMissingSuperiors(n, have)
	if len(folders)+len(missing)+adds > node.MaxFolders {
		return nil, imapNo(imap.ResponseCodeCannot, fmt.Sprintf("Not allowed: a mailbox holds at most %d folders", node.MaxFolders))
	}
	var made []string
	for _, parent := range missing {
		err := s.srv.store.CreateFolder(ctx, addr, parent, "")
		if err != nil && !errors.Is(err, node.ErrFolderExists) {
			s.undoSuperiors(addr, made, err)
			return nil, s.storeError("create", err, imap.ResponseCodeNonExistent)
		}
		if err == nil {
			made = append(made, parent)
		}
	}
	return made, nil
}

// imapMissingSuperiors lists the superior names of n that have does not
// hold, shallowest first; INBOX always exists.
func imapMissingSuperiors(n string, have map[string]bool) []string {
	var missing []string
	for i := range len(n) {
		if n[i] != imapDelim {
			continue
		}
		if parent := n[:i]; !have[parent] && !strings.EqualFold(parent, "INBOX") {
			missing = append(missing, parent)
		}
	}
	return missing
}

// undoSuperiors takes back the superior names a CREATE or RENAME made,
// deepest first, once its own step failed with why: the command fails,
// so it must change nothing. One that exists because of why is kept
// (the name was created meanwhile, by another session or by a commit
// whose answer was lost: the superiors are then its own). So is one that
// has since got a message or a child of another session's: deleting it
// would take those along, or leave a child without its parent. The
// delete asks the store to check that again with it (DeleteFolderIf:
// from command encoding 16 in the delete's own entry), so a message or
// a child that arrives after the read here keeps the folder too; below
// 16 the read is the only check. Any other failure here is logged, and
// what is left stays.
func (s *imapSession) undoSuperiors(addr string, made []string, why error) {
	if len(made) == 0 || errors.Is(why, node.ErrFolderExists) {
		return
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	folders, err := s.srv.store.Folders(ctx, addr)
	if err != nil {
		s.log.Warn("imap: superior names of a failed command left", "folders", made, "err", err)
		return
	}
	live := make(map[string]node.Folder, len(folders))
	for _, f := range folders {
		live[f.Name] = f
	}
	for _, name := range slices.Backward(made) {
		f, ok := live[name]
		if !ok || f.Messages > 0 || imapHasChild(live, name) {
			continue
		}
		cond := node.FolderDeleteIf{ID: f.ID, UIDValidity: f.UIDValidity, Empty: true, NoChild: true}
		err := s.srv.store.DeleteFolderIf(ctx, addr, name, cond)
		if errors.Is(err, node.ErrDeleteCondition) {
			// Its superiors now have a child, and are kept as well.
			s.log.Info("imap: superior name of a failed command kept: it got a message or a child meanwhile", "folder", name, "err", err)
			continue
		}
		if err != nil {
			s.log.Warn("imap: superior name of a failed command left", "folder", name, "err", err)
			return
		}
		delete(live, name)
	}
}

// imapHasChild reports whether live holds a folder below name.
func imapHasChild(live map[string]node.Folder, name string) bool {
	for n := range live {
		if strings.HasPrefix(n, name+string(imapDelim)) {
			return true
		}
	}
	return false
}

// Delete deletes a folder and its messages; its children stay (RFC 9051
// section 6.3.5). INBOX cannot be deleted.
func (s *imapSession) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr, err := s.user()
	if err != nil {
		return err
	}
	n, err := lookupFolder(name, imap.ResponseCodeNonExistent)
	if err != nil {
		return err
	}
	if n == "INBOX" {
		return imapNo(imap.ResponseCodeCannot, "INBOX cannot be deleted")
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	if err := s.srv.store.DeleteFolder(ctx, addr, n); err != nil {
		return s.storeError("delete", err, imap.ResponseCodeNonExistent)
	}
	if s.sel != nil && s.sel.name == n {
		// Its own selection: not a folder that vanished under it, which
		// the poll after this command would end the connection for
		// before the tagged OK. Later commands find nothing selected.
		s.unselectLocked()
	}
	return nil
}

// Rename renames a folder and its children. If this session has one of
// them selected, its selection follows the new name, so that it is not
// taken for a folder deleted by someone else.
func (s *imapSession) Rename(from, to string, _ *imap.RenameOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr, err := s.user()
	if err != nil {
		return err
	}
	f, err := lookupFolder(from, imap.ResponseCodeNonExistent)
	if err != nil {
		return err
	}
	t, err := imapNewFolderName(to)
	if err != nil {
		return err
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	if t == f || t == "INBOX" {
		return s.renameOntoItself(ctx, addr, f)
	}
	var made []string
	if !strings.HasPrefix(t, f+"/") { // within itself the store refuses it
		adds := 0
		if f == "INBOX" {
			adds = 1 // INBOX stays: its messages move to a new folder
		}
		if made, err = s.createSuperiors(ctx, addr, t, f, adds); err != nil {
			return err
		}
	}
	if err := s.srv.store.RenameFolder(ctx, addr, f, t); err != nil {
		s.undoSuperiors(addr, made, err)
		return s.storeError("rename", err, imap.ResponseCodeNonExistent)
	}
	if sel := s.sel; sel != nil && f != "INBOX" {
		switch {
		case sel.name == f:
			sel.name = t
		case strings.HasPrefix(sel.name, f+"/"):
			sel.name = t + strings.TrimPrefix(sel.name, f)
		}
	}
	return nil
}

// renameOntoItself answers a RENAME whose target is its own source or
// INBOX, which the store refuses as invalid: that target exists whenever
// the source does, so the answer is ALREADYEXISTS (RFC 9051 sections
// 6.3.6 and 7.1), or NONEXISTENT for a source that is not there.
func (s *imapSession) renameOntoItself(ctx context.Context, addr, from string) error {
	if _, err := s.srv.store.Folder(ctx, addr, from); err != nil {
		return s.storeError("rename", err, imap.ResponseCodeNonExistent)
	}
	return imapNo(imap.ResponseCodeAlreadyExists, "Mailbox already exists")
}

func (s *imapSession) Subscribe(name string) error   { return s.subscribe(name, true) }
func (s *imapSession) Unsubscribe(name string) error { return s.subscribe(name, false) }

// subscribe sets a folder's subscription. Subscriptions live in the
// folder records, so a folder that does not exist cannot be subscribed
// (NO [NONEXISTENT]), and is never subscribed: UNSUBSCRIBE of one is OK
// (RFC 9051 §6.3.8: OK "if the mailbox is not subscribed"), as clients
// that unsubscribe a folder after deleting it expect.
func (s *imapSession) subscribe(name string, on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr, err := s.user()
	if err != nil {
		return err
	}
	n, err := lookupFolder(name, imap.ResponseCodeNonExistent)
	if err != nil {
		if !on {
			return nil
		}
		return err
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	err = s.srv.store.SubscribeFolder(ctx, addr, n, on)
	if !on && errors.Is(err, node.ErrNoFolder) {
		return nil
	}
	if err != nil {
		return s.storeError("subscribe", err, imap.ResponseCodeNonExistent)
	}
	return nil
}

// Status answers from the folder record's counters: one read.
func (s *imapSession) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr, err := s.user()
	if err != nil {
		return nil, err
	}
	n, err := lookupFolder(name, imap.ResponseCodeNonExistent)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	f, err := s.srv.store.Folder(ctx, addr, n)
	if err != nil {
		return nil, s.storeError("status", err, imap.ResponseCodeNonExistent)
	}
	d, err := s.statusData(ctx, addr, f, options, false)
	if err != nil {
		return nil, s.storeError("status", err, imap.ResponseCodeNonExistent)
	}
	return d, nil
}

// errFolderReplaced is a folder whose name another folder took between
// two reads of one command.
var errFolderReplaced = fmt.Errorf("%w: another folder took its name", node.ErrNoFolder)

// statusData answers STATUS items from the folder record; only
// DELETED-STORAGE reads the folder's messages, and only when the record
// counts \Deleted ones. That read answers every item, so the counts and
// DELETED-STORAGE come from one index. With sameFolder, a folder that
// another took the name of since f was read is errFolderReplaced (LIST
// lists f, so its STATUS must be f's); without, the read answers for
// whichever folder has the name now.
func (s *imapSession) statusData(ctx context.Context, addr string, f node.Folder, o *imap.StatusOptions, sameFolder bool) (*imap.StatusData, error) {
	if !o.DeletedStorage || f.Deleted <= 0 {
		d := s.statusCounts(f, o)
		if o.DeletedStorage {
			d.DeletedStorage = new(int64)
		}
		return d, nil
	}
	v, err := s.srv.store.View(ctx, addr, f.Name)
	if err != nil {
		return nil, err
	}
	if sameFolder && v.Folder.ID != f.ID {
		return nil, errFolderReplaced
	}
	d := s.statusCounts(v.Folder, o)
	n := deletedStorage(v.Messages)
	d.DeletedStorage = &n
	return d, nil
}

// deletedStorage is the DELETED-STORAGE item (RFC 9208 §4.2), which
// QUOTA=RES-STORAGE requires: the octets an EXPUNGE would free, the sizes
// of the \Deleted messages.
func deletedStorage(msgs []node.StoredMessage) int64 {
	var n int64
	for _, m := range msgs {
		if slices.ContainsFunc(m.Flags, func(fl string) bool { return strings.EqualFold(fl, string(imap.FlagDeleted)) }) {
			n += int64(m.Size)
		}
	}
	return n
}

func (s *imapSession) statusCounts(f node.Folder, o *imap.StatusOptions) *imap.StatusData {
	u32 := func(v int64) *uint32 {
		n := uint32(min(max(v, 0), 1<<32-1))
		return &n
	}
	d := &imap.StatusData{Mailbox: f.Name, UIDNext: imap.UID(f.UIDNext), UIDValidity: f.UIDValidity}
	if o.NumMessages {
		d.NumMessages = u32(f.Messages)
	}
	if o.NumUnseen {
		d.NumUnseen = u32(f.Unseen)
	}
	if o.NumDeleted {
		d.NumDeleted = u32(f.Deleted)
	}
	if o.Size {
		size := max(f.Bytes, 0)
		d.Size = &size
	}
	if o.NumRecent {
		d.NumRecent = u32(0) // \Recent is not kept (RFC 9051 removed it)
	}
	if o.AppendLimit {
		d.AppendLimit = u32(s.srv.cfg.MaxAppendBytes)
	}
	return d
}

// Append stores a message. It returns only once the store says the
// message is durable (Promise 1), and names it with APPENDUID (RFC 4315).
func (s *imapSession) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr, err := s.user()
	if err != nil {
		return nil, err
	}
	n, err := lookupFolder(mailbox, imap.ResponseCodeTryCreate)
	if err != nil {
		return nil, err
	}
	if r.Size() > s.srv.cfg.MaxAppendBytes {
		return nil, imapNo(imap.ResponseCodeTooBig, "Message too big")
	}
	flags, err := imapStoreFlagList(options.Flags, s.sel)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.srv.cfg.TransferTimeout)
	defer cancel()
	body := &literalBody{r: r, left: r.Size()}
	if s.raw != nil {
		body.more = s.raw.appendMore.Load
		if r.Size() == 0 {
			judged := s.raw.judgeEmptyMessage()
			if body.more() {
				return nil, errIMAPAppendNotAlone
			}
			if !judged {
				return nil, errIMAPAppendUnended
			}
		}
	}
	// Stored with CRLF line ends, as SMTP stores (crlfReader): APPEND
	// takes an RFC 5322 message (RFC 9051 §6.3.12), whose lines end in
	// CRLF (RFC 5322 §2.1), and a client's bare LFs would
	// otherwise reach every reader of the message, POP3's sizes too. The
	// stored size may differ from the literal's; RFC822.SIZE and BODY[]
	// both give the stored message.
	res, err := s.srv.store.Append(ctx, addr, n, flags, options.Time, newCRLFReader(body))
	if err != nil && body.more != nil && body.more() {
		return nil, errIMAPAppendNotAlone
	}
	if err != nil {
		return nil, s.storeError("append", err, imap.ResponseCodeTryCreate)
	}
	s.storedAt = s.calls
	s.log.Debug("imap: appended", "folder", n, "uid", res.UID, "size", r.Size())
	return &imap.AppendData{UID: imap.UID(res.UID), UIDValidity: res.UIDValidity}, nil
}

// System flags in their canonical spelling; flags are case-insensitive
// (RFC 9051 section 2.3.2).
var imapSystemFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}

// imapStoreFlagList prepares client flags for the store: system flags in
// canonical case, keywords in the case already used in the selected
// folder (if any), \Recent dropped (it cannot be stored), no duplicates.
// A list longer than a message can hold (a command line has room for
// thousands) is refused here, before any work per message or any upload:
// the store would refuse it too.
func imapStoreFlagList(flags []imap.Flag, sel *imapSelected) ([]string, error) {
	out := make([]string, 0, min(len(flags), node.MaxMessageFlags+1))
	seen := make(map[string]bool, cap(out))
	for _, f := range flags {
		s := string(f)
		if strings.EqualFold(s, `\Recent`) {
			continue
		}
		if strings.HasPrefix(s, `\`) {
			for _, sys := range imapSystemFlags {
				if strings.EqualFold(s, string(sys)) {
					s = string(sys)
				}
			}
		} else if sel != nil {
			if known, ok := sel.keywords[strings.ToLower(s)]; ok {
				s = known
			}
		}
		if seen[strings.ToLower(s)] {
			continue
		}
		if len(out) == node.MaxMessageFlags {
			return nil, errIMAPTooManyFlags
		}
		seen[strings.ToLower(s)] = true
		out = append(out, s)
	}
	return out, nil
}

// errLiteralCut is an APPEND literal that ended before its announced
// size: the client's connection was lost part way.
var errLiteralCut = fmt.Errorf("imap: literal ended early: %w", io.ErrUnexpectedEOF)

// literalBody is an APPEND literal as the store reads it. The library's
// literal reader is a limited reader over the connection, which reports
// a connection lost part way as the literal's end (io.EOF): here that is
// errLiteralCut, so the store fails the APPEND instead of storing the
// part that arrived (RFC 9051 §4.3: a literal is exactly its octet
// count; the client, which got no OK, will send the message again).
//
// more, when set, reports that the literal is followed by more than its
// command's end (imap_appendend.go); read when the last octet arrives,
// which the wire layer passes only once it knows, it fails the literal,
// so that the store keeps nothing of a command that gets BAD.
type literalBody struct {
	r    io.Reader
	left int64
	more func() bool
}

func (b *literalBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = errLiteralCut
	}
	if b.left == 0 && n > 0 && b.more != nil && b.more() {
		err = errIMAPAppendNotAlone
	}
	return n, err
}
