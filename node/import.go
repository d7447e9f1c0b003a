package node

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"powermail/fsm"
	"powermail/storage"
)

// Mailbox restore: the messages of a Maildir++ tar (an export, or a
// Dovecot or Courier Maildir put in a tar) added to a mailbox.
//
//   - A message is a file directly in a cur/ or new/ directory. The
//     directory above is the folder: one whose name starts with "." is
//     Maildir++'s ".Name.Sub" (modified UTF-7 levels, "." between them);
//     any other, and ".maildir" (a common name for the root), is INBOX.
//     tmp/, index and list files are skipped. A message in a "."
//     directory that does not decode stops the restore, as a folder name
//     the mailbox refuses does.
//   - Flags come from the ":2," part of the name (D F P R S T, and a-z by
//     the folder's dovecot-keywords file: a message met before that file
//     gets its keywords when the file comes); a message in new/ is
//     unseen. The internal date is the file's time, or where the tar
//     has none the time the Maildir name starts with.
//   - A message whose body the folder already holds is skipped, so a
//     restore can be run again after it broke off. Folders are created
//     as needed; a file larger than the limit is skipped and counted,
//     as a duplicate when its folder holds it (read for its hash alone,
//     restorelarge.go), else as too large.
//   - INBOX messages keep the POP3 unique-ids of a Dovecot folder's
//     dovecot-uidlist, before or after them in the tar (restoreuidl.go).
//   - A hard link to an earlier message file is that message again, in
//     the link's folder with the link's flags: Dovecot copies a message
//     to another folder as a second link to its file, and tar stores
//     every link after the first as a link. Its body is read back from
//     the cluster, which holds it since the first.

// DefaultRestoreMaxBytes is the largest message a restore takes unless
// told otherwise; it matches the SMTP default.
const DefaultRestoreMaxBytes = 50 << 20

// RestoreResult counts what a restore did.
type RestoreResult struct {
	Added      int      `json:"added"`
	Duplicates int      `json:"duplicates"`
	TooLarge   int      `json:"too_large"`
	Folders    []string `json:"folders_created,omitempty"`
	// POP3 unique-ids of INBOX messages from a dovecot-uidlist
	// (restoreuidl.go): kept, and not kept because the cluster's command
	// encoding is below 17, because the id is not 1 to 70 characters from
	// 0x21 to 0x7E (RFC 1939 §7) or has this server's own
	// <UIDVALIDITY>.<UID> form, or because another message of INBOX has it
	// (the first keeps it); unlisted are messages the list does not name.
	POP3UIDLsKept      int `json:"pop3_uidls_kept,omitempty"`
	POP3UIDLsNotKept   int `json:"pop3_uidls_not_kept,omitempty"`
	POP3UIDLsInvalid   int `json:"pop3_uidls_invalid,omitempty"`
	POP3UIDLsDuplicate int `json:"pop3_uidls_duplicate,omitempty"`
	POP3UIDLsUnlisted  int `json:"pop3_uidls_unlisted,omitempty"`
}

// RestoreOptions are a restore's settings.
type RestoreOptions struct {
	// MaxBytes is the largest message taken (0: the default).
	MaxBytes int64
	// POP3UIDLFormat is the pop3_uidl_format of the Dovecot the mailbox
	// comes from ("": Dovecot's default; ParsePOP3UIDLFormat).
	POP3UIDLFormat string
}

// restoreState is one restore's progress.
type restoreState struct {
	n        *Node
	addr     string
	maxBytes int64
	memBytes int64 // the largest message held in memory (spool)
	res      RestoreResult
	keywords map[string]map[byte]string           // by Maildir directory
	held     map[string]map[storage.Hash]struct{} // bodies per folder
	// later are messages added with keyword letters before their
	// directory's dovecot-keywords came: the keywords are stored when it
	// does (a tar of a Maildir has its files in any order).
	later map[string][]laterKeywords
	// files are the bodies of the message files read so far, by the
	// hash of their name (a name may have up to 1 MiB), for the hard
	// links to them that may follow; zero: too large.
	files map[storage.Hash]storage.Hash
	// large are the files of files above max_bytes, by the same key.
	large map[storage.Hash]largeFile
	// uidl is what the restore knows of INBOX's POP3 unique-ids.
	uidl uidlRestore
}

type laterKeywords struct {
	folder  string
	uid     uint32
	letters string
}

// RestoreMailbox adds the messages of the Maildir++ tar r to addr (see
// above). On an error the messages added so far stay, and the result
// says how many.
func (n *Node) RestoreMailbox(ctx context.Context, addr string, r io.Reader, maxBytes int64) (RestoreResult, error) {
	return n.RestoreMailboxWith(ctx, addr, r, RestoreOptions{MaxBytes: maxBytes})
}

// RestoreMailboxWith is RestoreMailbox with all of its options.
func (n *Node) RestoreMailboxWith(ctx context.Context, addr string, r io.Reader, opts RestoreOptions) (RestoreResult, error) {
	format, err := ParsePOP3UIDLFormat(opts.POP3UIDLFormat)
	if err != nil {
		return RestoreResult{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	maxBytes := opts.MaxBytes
	ceiling := n.cfg.RestoreMaxBytes
	if maxBytes <= 0 {
		maxBytes = min(DefaultRestoreMaxBytes, ceiling)
	}
	if maxBytes > ceiling {
		return RestoreResult{}, fmt.Errorf("%w: max_bytes %d is above this node's ceiling of %d bytes (--restore-max-bytes)", ErrInvalidArgument, maxBytes, ceiling)
	}
	st := &restoreState{n: n, addr: addr, maxBytes: maxBytes, memBytes: n.cfg.RestoreMemoryBytes,
		keywords: map[string]map[byte]string{}, held: map[string]map[storage.Hash]struct{}{}, later: map[string][]laterKeywords{},
		files: map[storage.Hash]storage.Hash{}, large: map[storage.Hash]largeFile{},
		uidl: uidlRestore{format: format, lists: map[string]uidList{}, pending: map[string][]pendingUIDL{},
			held: map[storage.Hash]uint32{}, give: map[uint32]string{}}}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return st.res, st.flushUIDLs(ctx)
		}
		if errors.Is(err, tar.ErrHeader) {
			// archive/tar's own words ("invalid tar header") do not say
			// what the operator gave or what is wanted.
			return st.res, fmt.Errorf("%w: not a tar archive, or a damaged one: give the tar mailbox export writes, or a Maildir put in one", ErrInvalidArgument)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return st.res, archiveEndsEarly("")
		}
		if err != nil {
			return st.res, fmt.Errorf("%w: archive: %v", ErrInvalidArgument, err)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeLink {
			continue
		}
		if err := st.entry(ctx, h, archiveEntry{tr}); err != nil {
			return st.res, entryError(h.Name, err)
		}
	}
}

// archiveEndsEarly is a restore's input that ends inside a tar header or
// a message (a copy or an upload cut short, or a short file that is no
// tar): the operator's input, not the node, is at fault, and running
// the restore again with the whole archive adds what is missing.
func archiveEndsEarly(where string) error {
	return fmt.Errorf("%w: the archive ends early%s (cut short, or not a tar archive): "+
		"give the whole tar mailbox export writes, or a Maildir put in one", ErrInvalidArgument, where)
}

// errArchiveCut marks an archive entry that ends before its size: the
// tar the operator gave is cut inside it. Only the archive's own reader
// sets it, so a body read back from a peer that ends early (also an
// io.ErrUnexpectedEOF) is not blamed on the archive.
var errArchiveCut = errors.New("archive cut inside an entry")

// archiveEntry reads one entry of the tar, marking an early end.
type archiveEntry struct{ r io.Reader }

func (a archiveEntry) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w: %w", errArchiveCut, err)
	}
	return n, err
}

// entryError names the entry a restore stopped at; an entry the
// archive cuts short is the operator's input, told as such.
func entryError(name string, err error) error {
	if errors.Is(err, errArchiveCut) {
		return archiveEndsEarly(" inside " + name)
	}
	return fmt.Errorf("restore %s: %w", name, err)
}

func (st *restoreState) entry(ctx context.Context, h *tar.Header, r io.Reader) error {
	name := path.Clean(h.Name)
	dir, file := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if file == "dovecot-keywords" && h.Typeflag == tar.TypeReg {
		return st.readKeywords(ctx, lastDir(dir), r)
	}
	if file == "dovecot-uidlist" && h.Typeflag == tar.TypeReg {
		return st.readUIDList(ctx, lastDir(dir), r)
	}
	parent, sub := path.Split(dir)
	if sub != "cur" && sub != "new" {
		return nil
	}
	mdir := lastDir(strings.TrimSuffix(parent, "/"))
	folder, ok := maildirFolder(mdir)
	if !ok {
		// A message left out here would be lost without a word; like a
		// folder name the mailbox refuses, it stops the restore.
		return fmt.Errorf("%w: directory %q is no Maildir++ folder name (modified UTF-7 levels between dots)", ErrInvalidArgument, mdir)
	}
	var msg *spooled
	var err error
	if h.Typeflag == tar.TypeLink {
		target, ok := st.files[storage.HashBytes([]byte(path.Clean(h.Linkname)))]
		switch {
		case !ok:
			return nil // a link to no message file
		case target == storage.Hash{}:
			return st.countLarge(ctx, folder, st.large[storage.HashBytes([]byte(path.Clean(h.Linkname)))])
		}
		msg, err = st.spoolBody(ctx, target)
	} else {
		if h.Size > st.maxBytes {
			return st.skipLarge(ctx, folder, storage.HashBytes([]byte(name)), r, h.Size)
		}
		msg, err = st.spool(r, h.Size)
	}
	if err != nil {
		return err
	}
	defer msg.Close()
	hash := msg.hash
	st.files[storage.HashBytes([]byte(name))] = hash
	held, err := st.folderHashes(ctx, folder)
	if err != nil {
		return err
	}
	// A body that a restore before line ends were made CRLF stored as
	// the file had it counts too, so running such a restore again adds
	// nothing twice; a link to this file then reads that body.
	if _, rawDup := held[msg.rawHash]; rawDup && msg.rawHash != hash {
		st.files[storage.HashBytes([]byte(name))] = msg.rawHash
		st.res.Duplicates++
		return st.heldUIDL(ctx, folder, mdir, file, msg.rawHash)
	}
	if _, dup := held[hash]; dup {
		st.res.Duplicates++
		return st.heldUIDL(ctx, folder, mdir, file, hash)
	}
	kw, known := st.keywords[mdir]
	flags, letters := maildirFlags(file, sub == "new", kw)
	var uidl string
	wait := false
	if folder == "INBOX" {
		if uidl, wait, err = st.inboxUIDL(mdir, file); err != nil {
			return err
		}
	}
	added, err := st.n.appendMessage(ctx, st.addr, folder, flags, restoreTime(h.ModTime, file), msg.reader(), uidl)
	if err != nil {
		return err
	}
	if uidl != "" {
		st.res.POP3UIDLsKept++
	}
	if wait {
		base, _, _ := strings.Cut(file, ":2,")
		st.uidl.pending[mdir] = append(st.uidl.pending[mdir], pendingUIDL{uid: added.UID, base: base})
	}
	if letters != "" && !known {
		st.later[mdir] = append(st.later[mdir], laterKeywords{folder: folder, uid: added.UID, letters: letters})
	}
	held[hash] = struct{}{}
	st.res.Added++
	return nil
}

// folderHashes returns the bodies the folder holds, creating the folder
// when it does not exist.
func (st *restoreState) folderHashes(ctx context.Context, folder string) (map[storage.Hash]struct{}, error) {
	if held, ok := st.held[fsm.CanonicalFolder(folder)]; ok {
		return held, nil
	}
	held, err := st.viewHashes(ctx, folder)
	if errors.Is(err, ErrNoFolder) {
		if err = st.n.CreateFolder(ctx, st.addr, folder, ""); err == nil || errors.Is(err, ErrFolderExists) {
			st.res.Folders = append(st.res.Folders, folder)
			held, err = st.viewHashes(ctx, folder)
		}
	}
	return held, err
}

// viewHashes reads the bodies folder holds, and keeps them for the
// restore's later messages.
func (st *restoreState) viewHashes(ctx context.Context, folder string) (map[storage.Hash]struct{}, error) {
	view, err := st.n.View(ctx, st.addr, folder)
	if err != nil {
		return nil, err
	}
	held := make(map[storage.Hash]struct{}, len(view.Messages))
	inbox := fsm.CanonicalFolder(folder) == "INBOX"
	for _, m := range view.Messages {
		if h, err := storage.ParseHash(m.Hash); err == nil {
			held[h] = struct{}{}
			if _, seen := st.uidl.held[h]; inbox && !seen {
				st.uidl.held[h] = m.UID
			}
		}
	}
	st.held[fsm.CanonicalFolder(folder)] = held
	return held, nil
}

// readKeywords reads a dovecot-keywords file ("<index> <keyword>"
// lines) and gives the messages added before it their keywords.
func (st *restoreState) readKeywords(ctx context.Context, dir string, r io.Reader) error {
	raw, err := io.ReadAll(io.LimitReader(r, 64<<10))
	if err != nil {
		return err
	}
	m := map[byte]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		idx, word, ok := strings.Cut(strings.TrimSpace(line), " ")
		i, err := strconv.Atoi(idx)
		// A word the state would refuse as a keyword (8-bit, a control,
		// too long) is left out: it would fail every message using it.
		if ok && err == nil && i >= 0 && i < 26 && fsm.ValidKeyword(word) {
			m[byte('a'+i)] = word
		}
	}
	st.keywords[dir] = m
	for _, l := range st.later[dir] {
		var words []string
		for _, c := range []byte(l.letters) {
			if m[c] != "" {
				words = append(words, m[c])
			}
		}
		if len(words) == 0 {
			continue
		}
		if _, err := st.n.StoreFlags(ctx, st.addr, l.folder, []uint32{l.uid}, FlagsAdd, words); err != nil {
			return err
		}
	}
	delete(st.later, dir)
	return nil
}

// lastDir is the last level of a directory path, "" for the archive's
// top.
func lastDir(dir string) string {
	if dir == "" || dir == "." {
		return ""
	}
	return path.Base(dir)
}

// maildirFolder is the folder a Maildir++ directory holds: INBOX for the
// root (any name not starting with ".", or none), else the ".Name.Sub"
// levels decoded. ok is false for a name that does not decode.
func maildirFolder(dir string) (string, bool) {
	name, sub := strings.CutPrefix(dir, ".")
	if !sub || strings.EqualFold(dir, ".maildir") {
		// ~/.maildir is a common name for the root itself; a top-level
		// folder called "maildir" is not worth mistaking it for.
		return "INBOX", true
	}
	levels := strings.Split(name, ".")
	for i, l := range levels {
		dec, ok := unmutf7(l)
		if !ok || dec == "" {
			return "", false
		}
		levels[i] = dec
	}
	return strings.Join(levels, "/"), true
}

// maildirFlags reads the flags of a message file name, and the keyword
// letters that keywords does not name.
func maildirFlags(name string, isNew bool, keywords map[byte]string) (flags []string, unknown string) {
	_, info, ok := strings.Cut(name, ":2,")
	if !ok || isNew {
		return nil, ""
	}
	for _, c := range []byte(info) {
		switch {
		case c == 'D':
			flags = append(flags, `\Draft`)
		case c == 'F':
			flags = append(flags, `\Flagged`)
		case c == 'P':
			flags = append(flags, "$Forwarded")
		case c == 'R':
			flags = append(flags, `\Answered`)
		case c == 'S':
			flags = append(flags, `\Seen`)
		case c == 'T':
			flags = append(flags, `\Deleted`)
		case c >= 'a' && c <= 'z' && keywords[c] != "":
			flags = append(flags, keywords[c])
		case c >= 'a' && c <= 'z':
			unknown += string(c)
		}
	}
	return flags, unknown
}

// unmutf7 decodes modified UTF-7 (RFC 3501 §5.1.3), accepting an encoded
// printable character (export writes "." as "&AC4-").
func unmutf7(s string) (string, bool) {
	var out strings.Builder
	for len(s) > 0 {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			out.WriteString(s)
			break
		}
		out.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '-')
		if end < 0 {
			return "", false
		}
		enc := s[i+1 : i+end]
		s = s[i+end+1:]
		if enc == "" {
			out.WriteByte('&')
			continue
		}
		raw, err := base64.RawStdEncoding.DecodeString(strings.ReplaceAll(enc, ",", "/"))
		if err != nil || len(raw)%2 != 0 {
			return "", false
		}
		units := make([]uint16, len(raw)/2)
		for j := range units {
			units[j] = uint16(raw[2*j])<<8 | uint16(raw[2*j+1])
		}
		out.WriteString(string(utf16.Decode(units)))
	}
	return out.String(), true
}

// restoreTime is a message's internal date: the file's time, or, where
// the tar has none (zero, 1970), the time a Maildir name starts with
// ("1700000000.M1P2.host:2,S"), or else the time of the restore (zero).
func restoreTime(t time.Time, file string) time.Time {
	if !t.IsZero() && t.Unix() > 0 {
		return t
	}
	digits, _, _ := strings.Cut(file, ".")
	if sec, err := strconv.ParseInt(digits, 10, 64); err == nil && sec >= minMaildirTime && sec < 1<<40 {
		return time.Unix(sec, 0)
	}
	return time.Time{}
}

// minMaildirTime is the least time a Maildir name is taken for (March
// 1973, the first of nine digits): a smaller number, as in a file called
// "1" or "42.eml", is no delivery time, and would date the message 1970
// as a missing file time would.
const minMaildirTime = 100_000_000

// restoreHandler runs RestoreMailbox over the request body (a tar). The
// body may be far larger and longer than other admin requests: instead of
// one deadline for the whole of it, each read has AdminReadTimeout.
func (n *Node) restoreHandler(w http.ResponseWriter, r *http.Request) {
	addr := r.PathValue("address")
	if err := n.readBarrier(r.Context()); err != nil {
		writeError(w, err)
		return
	}
	if _, err := n.state.Mailbox(addr); err != nil {
		writeError(w, err)
		return
	}
	var maxBytes int64
	if v := r.URL.Query().Get("max_bytes"); v != "" {
		var err error
		if maxBytes, err = strconv.ParseInt(v, 10, 64); err != nil || maxBytes <= 0 {
			writeError(w, fmt.Errorf("%w: max_bytes %q", ErrInvalidArgument, v))
			return
		}
	}
	body := &idleDeadline{r: r.Body, rc: http.NewResponseController(w), idle: n.cfg.AdminReadTimeout}
	opts := RestoreOptions{MaxBytes: maxBytes, POP3UIDLFormat: r.URL.Query().Get("pop3_uidl_format")}
	if _, err := ParsePOP3UIDLFormat(opts.POP3UIDLFormat); err != nil {
		writeError(w, fmt.Errorf("%w: %w", ErrInvalidArgument, err))
		return
	}
	res, err := n.RestoreMailboxWith(r.Context(), addr, body, opts)
	if err != nil {
		n.log.Warn("mailbox restore failed", "mailbox", addr, "added", res.Added, "err", err)
		writeError(w, fmt.Errorf("%w (%d messages were added before it)", err, res.Added))
		return
	}
	n.log.Info("mailbox restored", "mailbox", addr, "added", res.Added, "duplicates", res.Duplicates, "too_large", res.TooLarge,
		"pop3_uidls_kept", res.POP3UIDLsKept, "pop3_uidls_not_kept", res.POP3UIDLsNotKept, "pop3_uidls_invalid", res.POP3UIDLsInvalid,
		"pop3_uidls_duplicate", res.POP3UIDLsDuplicate, "pop3_uidls_unlisted", res.POP3UIDLsUnlisted)
	writeJSON(w, http.StatusOK, res)
}

// idleDeadline gives each read of a request body its own deadline.
type idleDeadline struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (d *idleDeadline) Read(p []byte) (int, error) {
	_ = d.rc.SetReadDeadline(time.Now().Add(d.idle))
	return d.r.Read(p)
}
