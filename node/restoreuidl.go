package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"powermail/fsm"
	"powermail/storage"
)

// POP3 unique-ids a restore keeps from Dovecot (RFC 1939 §7).
//
// A Dovecot Maildir folder lists its messages in dovecot-uidlist: a
// header ("3 V<uidvalidity> N<nextuid> G<guid>", or in version 1
// "1 <uidvalidity> <nextuid>"), then a line per message, "<uid>
// [fields] :<filename>" (version 1: "<uid> <filename>"). A field
// P<uidl> is the unique-id Dovecot gave POP3 clients where it saved one,
// G<guid> the message's GUID. For a message of INBOX (the only folder
// POP3 sees) the restore keeps the P field, or else the unique-id the
// format makes of the message's line: Dovecot's default
// pop3_uidl_format, "%08Xu%08Xv", unless the operator names the one
// their Dovecot used. The file may come before or after the messages in
// the tar: messages added before it get theirs when it comes
// (fsm.POP3UIDLSet).

// DefaultPOP3UIDLFormat is Dovecot's default pop3_uidl_format.
const DefaultPOP3UIDLFormat = "%08Xu%08Xv"

// ErrPOP3UIDLFormat: a pop3_uidl_format a restore cannot follow.
var ErrPOP3UIDLFormat = errors.New("unsupported pop3_uidl_format")

// uidlFormat is a parsed pop3_uidl_format: literal text and variables.
type uidlFormat []uidlPart

// uidlPart is literal text (v 0) or a variable: v is u (UID), v
// (UIDVALIDITY), g (GUID) or f (file name); u and v take a width and X
// for hexadecimal, as Dovecot's var_expand has them: a width written
// with a leading 0 pads with zeros and never cuts ("%08Xu"), one
// without cuts the value to its first characters and never pads
// ("%4u"), and X writes lower-case hexadecimal (printf's %llx, which
// UW-IMAP's unique-ids, "%08Xv%08Xu" in Dovecot, also have).
type uidlPart struct {
	lit   string
	v     byte
	width int
	pad   bool // the width began with 0: pad, do not cut
	hex   bool
}

// ParsePOP3UIDLFormat parses a Dovecot pop3_uidl_format of the subset a
// restore follows: %u, %v (each with an optional width, and X for
// hexadecimal, as in "%08Xu"; see uidlPart), %g, %f and %%. A lower-case
// x is taken as X. Any other variable (%m, the MD5 of the headers, which a restore
// cannot reproduce, or the long %{...} forms) is refused.
func ParsePOP3UIDLFormat(s string) (uidlFormat, error) {
	if s == "" {
		s = DefaultPOP3UIDLFormat
	}
	var f uidlFormat
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			f = append(f, uidlPart{lit: s[i : i+1]})
			continue
		}
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		width, _ := strconv.Atoi(s[i+1 : j])
		pad := j > i+1 && s[i+1] == '0'
		hex := false
		if j < len(s) && (s[j] == 'X' || s[j] == 'x') {
			hex, j = true, j+1
		}
		if j >= len(s) {
			return nil, fmt.Errorf("%w %q: it ends inside a variable", ErrPOP3UIDLFormat, s)
		}
		v := s[j]
		switch {
		case v == '%' && j == i+1:
			f = append(f, uidlPart{lit: "%"})
		case (v == 'u' || v == 'v') && width <= 16:
			f = append(f, uidlPart{v: v, width: width, pad: pad, hex: hex})
		case (v == 'g' || v == 'f') && j == i+1:
			f = append(f, uidlPart{v: v})
		default:
			return nil, fmt.Errorf("%w %q: %q is not one of %%u %%v (with a width and X or x) %%g %%f %%%%; "+
				"for another format keep the unique-ids in the uidlist's P fields (Dovecot pop3_save_uidl)", ErrPOP3UIDLFormat, s, s[i:j+1])
		}
		i = j
	}
	return f, nil
}

// render is the unique-id of a message by the format.
func (f uidlFormat) render(e uidlEntry, validity uint32) string {
	var b strings.Builder
	for _, p := range f {
		switch p.v {
		case 0:
			b.WriteString(p.lit)
		case 'u', 'v':
			n := e.uid
			if p.v == 'v' {
				n = validity
			}
			b.WriteString(p.number(n))
		case 'g':
			b.WriteString(cmpOr(e.guid, e.base))
		case 'f':
			b.WriteString(e.base)
		}
	}
	return b.String()
}

// number writes n as the part's width and base say (uidlPart).
func (p uidlPart) number(n uint32) string {
	base := 10
	if p.hex {
		base = 16
	}
	s := strconv.FormatUint(uint64(n), base)
	switch {
	case p.width == 0:
	case p.pad && len(s) < p.width:
		s = strings.Repeat("0", p.width-len(s)) + s
	case !p.pad && len(s) > p.width:
		s = s[:p.width]
	}
	return s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// uidlEntry is one message line of a dovecot-uidlist.
type uidlEntry struct {
	uid        uint32
	base       string // the file name before ":2,"
	pop3, guid string // the P and G fields
}

// uidList is a parsed dovecot-uidlist: its UIDVALIDITY and its message
// lines by file name base.
type uidList struct {
	validity uint32
	byBase   map[string]uidlEntry
}

// Bounds of what a restore reads of a dovecot-uidlist, whatever the
// file holds: a line (one over it is left out, and the lines after it
// are read), the entries kept (the lines past them are left out: their
// messages are counted as unlisted), and a file name (NAME_MAX: a longer
// one names no file of a Maildir). A P or G field keeps at most one
// character more than a unique-id may have, which is enough to find it
// too long.
const (
	maxUIDListLine    = 64 << 10
	maxUIDListEntries = 1 << 21
	maxUIDListName    = 255
)

// parseUIDList reads a dovecot-uidlist of version 1 or 3. Lines it cannot
// read are left out (their messages keep no unique-id, and are counted);
// another version, a header without a UIDVALIDITY, or an empty file, is
// an error.
func parseUIDList(r io.Reader) (uidList, error) {
	return parseUIDListMax(r, maxUIDListEntries)
}

// parseUIDListMax is parseUIDList keeping at most maxEntries entries.
func parseUIDListMax(r io.Reader, maxEntries int) (uidList, error) {
	lr := uidListLines{r: bufio.NewReaderSize(r, maxUIDListLine)}
	line, ok, err := lr.next()
	if err != nil {
		return uidList{}, err
	}
	if !ok {
		return uidList{}, fmt.Errorf("%w: empty dovecot-uidlist", ErrInvalidArgument)
	}
	head := strings.Fields(line)
	l := uidList{byBase: map[string]uidlEntry{}}
	version := ""
	if len(head) > 0 {
		version = head[0]
	}
	switch version {
	case "1":
		if len(head) >= 2 {
			l.validity = parseUint32(head[1])
		}
	case "3":
		for _, f := range head[1:] {
			if v, ok := strings.CutPrefix(f, "V"); ok {
				l.validity = parseUint32(v)
			}
		}
	default:
		return uidList{}, fmt.Errorf("%w: dovecot-uidlist version %q (this restore reads versions 1 and 3)", ErrInvalidArgument, version)
	}
	if l.validity == 0 {
		// RFC 9051 §2.3.1.1: a UIDVALIDITY is a non-zero number.
		return uidList{}, fmt.Errorf("%w: dovecot-uidlist header %q has no UIDVALIDITY", ErrInvalidArgument, cut(line, 80))
	}
	for len(l.byBase) < maxEntries {
		line, ok, err := lr.next()
		if err != nil {
			return uidList{}, err
		}
		if !ok {
			break
		}
		if e, ok := parseUIDListLine(line, version == "1"); ok {
			l.byBase[e.base] = e
		}
	}
	return l, nil
}

// uidListLines reads a dovecot-uidlist's lines, without their CRLF or
// LF ends, leaving out those longer than maxUIDListLine.
type uidListLines struct{ r *bufio.Reader }

// next is the next line; ok is false at the end of the file.
func (lr uidListLines) next() (line string, ok bool, err error) {
	for {
		b, err := lr.r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if err := lr.skipLine(); err != nil {
				return "", false, err
			}
			continue
		case errors.Is(err, io.EOF) && len(b) == 0:
			return "", false, nil
		case err != nil && !errors.Is(err, io.EOF):
			return "", false, err
		}
		b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
		return string(b), true, nil
	}
}

// skipLine reads on past the end of an over-long line.
func (lr uidListLines) skipLine() error {
	for {
		_, err := lr.r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func parseUIDListLine(line string, v1 bool) (uidlEntry, bool) {
	var e uidlEntry
	var fields []string
	var name string
	if v1 {
		uid, rest, ok := strings.Cut(line, " ")
		if !ok {
			return e, false
		}
		fields, name = []string{uid}, strings.TrimSpace(rest)
	} else {
		i := strings.Index(line, " :")
		if i < 0 {
			return e, false
		}
		fields, name = strings.Fields(line[:i]), line[i+2:]
	}
	if len(fields) == 0 || name == "" {
		return e, false
	}
	e.uid = parseUint32(fields[0])
	if e.uid == 0 {
		return e, false
	}
	base, _, _ := strings.Cut(name, ":2,")
	if len(base) > maxUIDListName {
		return e, false
	}
	// Clones, so that an entry does not keep its whole line.
	e.base = strings.Clone(base)
	for _, f := range fields[1:] {
		switch f[0] {
		case 'P':
			e.pop3 = strings.Clone(cut(f[1:], fsm.MaxPOP3UIDL+1))
		case 'G':
			e.guid = strings.Clone(cut(f[1:], fsm.MaxPOP3UIDL+1))
		}
	}
	return e, true
}

func parseUint32(s string) uint32 {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

// uidlRestore is what a restore knows of INBOX's unique-ids.
type uidlRestore struct {
	format uidlFormat
	lists  map[string]uidList // by Maildir directory
	// pending are INBOX messages added before their directory's list
	// came.
	pending map[string][]pendingUIDL
	loaded  bool
	keeps   bool // the cluster's encoding keeps them
	inbox   fsm.Folder
	kept    map[uint32]string   // INBOX's unique-ids when the restore began
	used    map[string]struct{} // INBOX's unique-ids, kept or given here
	// held are the UIDs of the bodies INBOX held when the restore began
	// (the first message of each), for a restore run again: a message it
	// skips as already there gets the unique-id the first run could not
	// give it (a list after the messages that it never reached, or a
	// cluster since raised to encoding 17).
	held map[storage.Hash]uint32
	// give are unique-ids for messages already in INBOX, by UID, to be
	// given by POP3UIDLSet.
	give map[uint32]string
}

type pendingUIDL struct {
	uid  uint32
	base string
}

// loadUIDLs reads INBOX and the unique-ids it keeps, once.
func (st *restoreState) loadUIDLs() error {
	u := &st.uidl
	if u.loaded {
		return nil
	}
	keeps, err := st.n.keepsPOP3UIDLs()
	if err != nil {
		return err
	}
	inbox, err := st.n.state.Folder(st.addr, "INBOX")
	if err != nil {
		return accessErr(err)
	}
	kept, err := st.n.state.POP3UIDLs(st.addr, inbox.ID, fsm.UIDRange{max(inbox.LowUID, 1), ^uint32(0)})
	if err != nil {
		return accessErr(err)
	}
	u.used = make(map[string]struct{}, len(kept))
	for _, v := range kept {
		u.used[v] = struct{}{}
	}
	u.keeps, u.inbox, u.kept, u.loaded = keeps, inbox, kept, true
	return nil
}

// claimUIDL is the unique-id a message of list keeps: its P field or
// the format's, "" if it keeps none (counted: the cluster's encoding
// is too old, the id is no RFC 1939 one, or another message has it).
func (st *restoreState) claimUIDL(list uidList, base string) (string, error) {
	e, ok := list.byBase[base]
	if !ok {
		st.res.POP3UIDLsUnlisted++
		return "", nil
	}
	if err := st.loadUIDLs(); err != nil {
		return "", err
	}
	u := &st.uidl
	uidl := cmpOr(e.pop3, u.format.render(e, list.validity))
	switch _, dup := u.used[uidl]; {
	case !u.keeps:
		st.res.POP3UIDLsNotKept++
		return "", nil
	case !fsm.StorablePOP3UIDL(uidl, u.inbox.UIDValidity):
		st.res.POP3UIDLsInvalid++
		return "", nil
	case dup:
		st.res.POP3UIDLsDuplicate++
		return "", nil
	}
	u.used[uidl] = struct{}{}
	return uidl, nil
}

// inboxUIDL is the unique-id an INBOX message of Maildir directory mdir
// named file keeps when added; wait is true when the directory's list
// has not come yet.
func (st *restoreState) inboxUIDL(mdir, file string) (uidl string, wait bool, err error) {
	list, ok := st.uidl.lists[mdir]
	if !ok {
		return "", true, nil
	}
	base, _, _ := strings.Cut(file, ":2,")
	uidl, err = st.claimUIDL(list, base)
	return uidl, false, err
}

// readUIDList reads the dovecot-uidlist of Maildir directory mdir, and
// gives the INBOX messages added before it their unique-ids.
func (st *restoreState) readUIDList(ctx context.Context, mdir string, r io.Reader) error {
	if folder, ok := maildirFolder(mdir); !ok || folder != "INBOX" {
		return nil // POP3 sees INBOX only
	}
	list, err := parseUIDList(r)
	if err != nil {
		// A list this restore cannot read keeps no unique-id, and stops
		// no restore: its messages are counted as unlisted.
		st.n.log.Warn("mailbox restore: dovecot-uidlist not read; INBOX messages get new POP3 unique-ids", "mailbox", st.addr, "err", err)
		list = uidList{byBase: map[string]uidlEntry{}}
	}
	st.uidl.lists[mdir] = list
	for _, p := range st.uidl.pending[mdir] {
		uidl, err := st.claimUIDL(list, p.base)
		if err != nil {
			return err
		}
		if uidl != "" {
			st.uidl.give[p.uid] = uidl
		}
	}
	delete(st.uidl.pending, mdir)
	return st.flushUIDLs(ctx)
}

// heldUIDL gives an INBOX message that the restore skips as already
// there, and that keeps no unique-id, the one its list names.
func (st *restoreState) heldUIDL(ctx context.Context, folder, mdir, file string, hash storage.Hash) error {
	uid, ok := st.uidl.held[hash]
	if folder != "INBOX" || !ok {
		return nil
	}
	delete(st.uidl.held, hash) // one message per body
	if err := st.loadUIDLs(); err != nil {
		return err
	}
	if _, has := st.uidl.kept[uid]; has {
		return nil
	}
	uidl, wait, err := st.inboxUIDL(mdir, file)
	switch {
	case err != nil:
		return err
	case wait:
		base, _, _ := strings.Cut(file, ":2,")
		st.uidl.pending[mdir] = append(st.uidl.pending[mdir], pendingUIDL{uid: uid, base: base})
	case uidl != "":
		st.uidl.give[uid] = uidl
		if len(st.uidl.give) >= fsm.MaxPOP3UIDLSet {
			return st.flushUIDLs(ctx)
		}
	}
	return nil
}

// flushUIDLs gives the messages already in INBOX the unique-ids waiting
// for them.
func (st *restoreState) flushUIDLs(ctx context.Context) error {
	give := st.uidl.give
	if len(give) == 0 {
		return nil
	}
	st.uidl.give = map[uint32]string{}
	set, err := st.n.setPOP3UIDLs(ctx, st.addr, st.uidl.inbox.UIDValidity, give)
	st.res.POP3UIDLsKept += set
	if err != nil {
		return err
	}
	// A message that has one already (given meanwhile) keeps it.
	st.res.POP3UIDLsDuplicate += len(give) - set
	return nil
}
