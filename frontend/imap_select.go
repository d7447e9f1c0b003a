package frontend

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"powermail/node"
)

// imapSelected is a session's view of its selected folder: the messages
// the client knows, in sequence-number order (msgs[i] has sequence number
// i+1), with the flags the client was last told.
//
// The snapshot changes only in ways the client is told about at once:
// EXISTS appends, EXPUNGE removes, FETCH FLAGS updates flags. A message
// that disappeared from the store while EXPUNGE responses were not allowed
// (during FETCH, STORE, SEARCH: RFC 9051 section 7.5.1) stays in msgs,
// marked gone, until the next command that allows them.
type imapSelected struct {
	name        string
	folderID    uint64 // the folder's own ID: another folder renamed to this name is not it
	readOnly    bool
	uidValidity uint32
	uidNext     uint32
	modSeq      uint64 // Folder.ModSeq the snapshot reflects
	msgs        []imapMsg
	gone        int               // messages marked gone, not yet reported
	keywords    map[string]string // lower case -> spelling, as last sent in FLAGS
	searchRes   imap.UIDSet       // SEARCH RETURN (SAVE) result, "$" (RFC 5182)

	watch   <-chan struct{} // MailStore.Watch of the mailbox
	unwatch func()
	dirty   bool // watch fired and no poll has read the store since
}

type imapMsg struct {
	uid   uint32
	hash  string
	size  int64
	date  int64    // unix ms
	flags []string // shared with the node's folder views: replaced, never modified in place
	gone  bool
}

func newIMAPMsg(m node.StoredMessage) imapMsg {
	return imapMsg{uid: m.UID, hash: m.Hash, size: m.Size, date: m.InternalDate, flags: m.Flags}
}

func (m *imapMsg) has(flag imap.Flag) bool {
	return slices.ContainsFunc(m.flags, func(f string) bool { return strings.EqualFold(f, string(flag)) })
}

func imapFlags(flags []string) []imap.Flag {
	out := make([]imap.Flag, len(flags))
	for i, f := range flags {
		out[i] = imap.Flag(f)
	}
	return out
}

// index returns the position of uid in the snapshot.
func (sel *imapSelected) index(uid uint32) (int, bool) {
	return sort.Find(len(sel.msgs), func(i int) int {
		switch {
		case uid < sel.msgs[i].uid:
			return -1
		case uid > sel.msgs[i].uid:
			return 1
		}
		return 0
	})
}

func (sel *imapSelected) maxUID() uint32 {
	if len(sel.msgs) == 0 {
		return 0
	}
	return sel.msgs[len(sel.msgs)-1].uid
}

// removeAll drops the messages at positions idx (ascending, unique) from
// the snapshot in one pass; the caller reports their EXPUNGEs. One
// slices.Delete per message moved the rest of the snapshot each time:
// EXPUNGE of every other message of 131,072 took 11 s.
func (sel *imapSelected) removeAll(idx []int) {
	if len(idx) == 0 {
		return
	}
	j, next := idx[0], 0
	for i := idx[0]; i < len(sel.msgs); i++ {
		if next < len(idx) && idx[next] == i {
			if sel.msgs[i].gone {
				sel.gone--
			}
			next++
			continue
		}
		sel.msgs[j] = sel.msgs[i]
		j++
	}
	clear(sel.msgs[j:]) // drop the removed messages' flags and hashes
	sel.msgs = sel.msgs[:j]
}

// reportRemoval reports EXPUNGE for the messages at positions idx
// (ascending, unique), highest sequence number first, so that each
// number is valid when sent, and drops them from the snapshot. On a
// failed write (the connection is lost) the ones reported are dropped.
func (sel *imapSelected) reportRemoval(idx []int, report func(seq uint32) error) error {
	for k := len(idx) - 1; k >= 0; k-- {
		if err := report(uint32(idx[k] + 1)); err != nil {
			sel.removeAll(idx[k:])
			return err
		}
	}
	sel.removeAll(idx)
	return nil
}

// mailboxFlags is the FLAGS response: system flags and every keyword in
// use.
func (sel *imapSelected) mailboxFlags() []imap.Flag {
	out := slices.Clone(imapSystemFlags)
	kws := make([]string, 0, len(sel.keywords))
	for _, k := range sel.keywords {
		kws = append(kws, k)
	}
	slices.Sort(kws)
	for _, k := range kws {
		out = append(out, imap.Flag(k))
	}
	return out
}

// scanKeywords adds the keywords of msgs to sel.keywords and reports
// whether any was new.
func (sel *imapSelected) scanKeywords(msgs []imapMsg) bool {
	added := false
	for _, m := range msgs {
		for _, f := range m.flags {
			if strings.HasPrefix(f, `\`) {
				continue
			}
			if _, ok := sel.keywords[strings.ToLower(f)]; !ok {
				sel.keywords[strings.ToLower(f)] = f
				added = true
			}
		}
	}
	return added
}

// resolve turns a sequence or UID set of the client into snapshot
// positions, ascending and unique, never enumerating a range
// ("1:4294967295" costs what the folder holds) and never touching more
// of the snapshot than the set selects. "*" is the last message (RFC 9051
// section 9, seq-number). With strict, a sequence number past the end is
// a client error (BAD); "*" in an empty folder matches nothing.
func (sel *imapSelected) resolve(set imap.NumSet, strict bool) ([]int, error) {
	if imap.IsSearchRes(set) {
		set = sel.searchRes
	}
	n := uint32(len(sel.msgs))
	var out []int
	ranges := 0
	switch set := set.(type) {
	case imap.SeqSet:
		for _, r := range set {
			lo, hi := r.Start, r.Stop
			star := lo == 0 || hi == 0
			if lo == 0 {
				lo = n
			}
			if hi == 0 {
				hi = n
			}
			if lo > hi {
				lo, hi = hi, lo
			}
			if !star && hi > n && strict {
				return nil, imapBad(fmt.Sprintf("Invalid sequence number %d: the mailbox has %d messages", hi, n))
			}
			for i := max(lo, 1); i <= min(hi, n); i++ {
				out = append(out, int(i-1))
			}
			ranges++
		}
	case imap.UIDSet:
		top := sel.maxUID()
		for _, r := range set {
			lo, hi := uint32(r.Start), uint32(r.Stop)
			if lo == 0 {
				lo = top
			}
			if hi == 0 {
				hi = top
			}
			if lo > hi {
				lo, hi = hi, lo
			}
			i, _ := sel.index(lo)
			for ; i < len(sel.msgs) && sel.msgs[i].uid <= hi; i++ {
				out = append(out, i)
			}
			ranges++
		}
	case nil:
	default:
		return nil, imapBad("Invalid message set")
	}
	if ranges > 1 { // ranges may overlap and come in any order
		slices.Sort(out)
		out = slices.Compact(out)
	}
	return out, nil
}

func (sel *imapSelected) uids(idx []int) []uint32 {
	out := make([]uint32, len(idx))
	for k, i := range idx {
		out[k] = sel.msgs[i].uid
	}
	return out
}

// Select reads the folder and makes it the session's snapshot. The watch
// starts before the read, so a change that races the read is noticed by
// the next poll.
func (s *imapSession) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr, err := s.user()
	if err != nil {
		return nil, err
	}
	s.unselectLocked()
	n, err := lookupFolder(name, imap.ResponseCodeNonExistent)
	if err != nil {
		return nil, err
	}
	watch, unwatch := s.srv.store.Watch(addr)
	ctx, cancel := s.callCtx()
	defer cancel()
	view, err := s.srv.store.View(ctx, addr, n)
	if err != nil {
		unwatch()
		return nil, s.storeError("select", err, imap.ResponseCodeNonExistent)
	}
	sel := &imapSelected{
		name:        view.Folder.Name,
		readOnly:    options != nil && options.ReadOnly,
		uidValidity: view.Folder.UIDValidity,
		folderID:    view.Folder.ID,
		uidNext:     view.Folder.UIDNext,
		modSeq:      view.Folder.ModSeq,
		keywords:    map[string]string{},
		watch:       watch,
		unwatch:     unwatch,
	}
	if sel.name == "" {
		sel.name = n
	}
	sel.msgs = make([]imapMsg, len(view.Messages))
	for i, m := range view.Messages {
		sel.msgs[i] = newIMAPMsg(m)
	}
	slices.SortFunc(sel.msgs, func(a, b imapMsg) int { return int(int64(a.uid) - int64(b.uid)) })
	sel.scanKeywords(sel.msgs)
	s.sel = sel

	data := &imap.SelectData{
		Flags:       sel.mailboxFlags(),
		NumMessages: uint32(len(sel.msgs)),
		UIDNext:     imap.UID(sel.uidNext),
		UIDValidity: sel.uidValidity,
	}
	// PERMANENTFLAGS: everything, new keywords too; nothing when
	// read-only (RFC 9051 section 7.1).
	data.PermanentFlags = []imap.Flag{}
	if !sel.readOnly {
		data.PermanentFlags = append(sel.mailboxFlags(), imap.FlagWildcard)
	}
	for i := range sel.msgs {
		if !sel.msgs[i].has(imap.FlagSeen) {
			data.FirstUnseenSeqNum = uint32(i + 1) // IMAP4rev1 only; the library omits it for rev2
			break
		}
	}
	if s.conn != nil && s.conn.EnabledCaps().Has(imap.CapIMAP4rev2) {
		// RFC 9051 §6.3.2: a LIST response for the mailbox, whose
		// attributes are accurate. Those the record holds are given;
		// \HasChildren would take a read of every folder, and LIST
		// tells it. RFC 3501 has no LIST in a SELECT's answer.
		data.List = &imap.ListData{Mailbox: sel.name, Delim: imapDelim, Attrs: []imap.MailboxAttr{}}
		if use := view.Folder.SpecialUse; use != "" {
			data.List.Attrs = append(data.List.Attrs, imap.MailboxAttr(use))
		}
	}
	s.log.Debug("imap: selected", "folder", sel.name, "messages", len(sel.msgs), "read_only", sel.readOnly)
	return data, nil
}

// Unselect leaves the selected state (UNSELECT, CLOSE, and SELECT of
// another folder) without expunging.
func (s *imapSession) Unselect() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unselectLocked()
	return nil
}

func (s *imapSession) unselectLocked() {
	if s.sel != nil {
		s.sel.unwatch()
		s.sel = nil
	}
}

// selected returns the selected folder or an error.
func (s *imapSession) selected() (*imapSelected, string, error) {
	s.calls++
	if s.addr == "" {
		return nil, "", errIMAPNotAuthed
	}
	if s.sel == nil {
		return nil, "", errIMAPNoneSelected
	}
	return s.sel, s.addr, nil
}

// Poll runs after every command (and for NOOP and CHECK): it reports what
// changed in the selected folder since the client last heard. After
// FETCH, STORE and SEARCH (allowExpunge false) it reads the store only if
// the watch said something changed; otherwise it always reads the folder
// record after the read barrier, so a NOOP sees every change committed
// anywhere before it began.
func (s *imapSession) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sel == nil || s.closed {
		return nil
	}
	bare := s.calls == s.polledAt // NOOP or CHECK: the poll is the command
	s.afterStore = s.calls == s.storedAt && s.calls != s.polledAt
	s.polledAt = s.calls
	err := s.pollLocked(w, allowExpunge, allowExpunge)
	s.afterStore = false
	if err == nil && bare && s.sel != nil && s.sel.dirty {
		// The client asked for the current state and the session could
		// not read it (no leader, timeout). Answering OK would vouch for
		// a stale view (found by the jepsen harness); the connection is
		// closed instead, and the client reconnects.
		return imapNo(imap.ResponseCodeUnavailable, "cannot read the current state of the folder")
	}
	return err
}

// Idle reports changes as they happen: on every Watch notification (so a
// delivery through any node shows up within the time it takes to apply
// it here), and every PollInterval as a safety net. Each wake-up also
// checks that the mailbox is still enabled (imap_revoke.go), with no
// folder selected too.
func (s *imapSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	s.mu.Lock()
	sel := s.sel
	// What the session already knows but could not say yet goes out
	// first: EXPUNGEs held back from a FETCH, STORE or SEARCH (RFC 9051
	// section 7.5.1), which IDLE allows (RFC 2177), and a change the last
	// poll failed to read. The watch has already fired for both, so
	// waiting for it would leave them to the next periodic poll.
	if sel != nil && !s.closed && (sel.gone > 0 || sel.dirty) {
		if err := s.pollLocked(w, true, false); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.mu.Unlock()
	t := time.NewTicker(s.srv.cfg.PollInterval)
	defer t.Stop()
	var watch <-chan struct{} // nothing selected: nothing to report
	if sel != nil {
		watch = sel.watch
	}
	for {
		select {
		case <-stop:
			return nil
		case <-s.ctx.Done():
			return nil
		case _, ok := <-watch:
			if !ok {
				watch = nil // the store closed it; keep polling on the ticker
				continue
			}
		case <-t.C:
		}
		if s.endIfRevoked() {
			return nil
		}
		if sel == nil {
			continue
		}
		s.mu.Lock()
		if s.sel != sel || s.closed {
			s.mu.Unlock()
			return nil
		}
		sel.dirty = true
		err := s.pollLocked(w, true, true)
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// pollLocked brings the snapshot up to date and tells the client. Store
// errors are logged and swallowed: the client hears about the changes on
// a later poll. Only a failed write (or a vanished folder, which ends the
// session) is returned, and that closes the connection.
func (s *imapSession) pollLocked(w *imapserver.UpdateWriter, allowExpunge, force bool) error {
	sel := s.sel
	select {
	case <-sel.watch:
		sel.dirty = true
	default:
	}
	if allowExpunge && sel.gone > 0 {
		if err := s.reportGone(w); err != nil {
			return err
		}
	}
	if !force && !sel.dirty {
		return nil
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	sel.dirty = false
	f, err := s.srv.store.Folder(ctx, s.addr, sel.name)
	if err == nil && !sel.same(f) {
		err = fmt.Errorf("%w: another folder under its name", node.ErrNoFolder)
	}
	if errors.Is(err, node.ErrNoFolder) {
		return s.folderVanished()
	}
	if err != nil {
		sel.dirty = true
		s.log.Debug("imap: poll failed", "folder", sel.name, "err", err)
		return nil
	}
	if f.ModSeq == sel.modSeq {
		return nil
	}
	view, err := s.srv.store.View(ctx, s.addr, sel.name)
	if err == nil && !sel.same(view.Folder) {
		err = fmt.Errorf("%w: another folder under its name", node.ErrNoFolder)
	}
	if errors.Is(err, node.ErrNoFolder) {
		return s.folderVanished()
	}
	if err != nil {
		sel.dirty = true
		s.log.Debug("imap: poll failed", "folder", sel.name, "err", err)
		return nil
	}
	return s.applyView(w, view, allowExpunge)
}

// same reports whether f is the selected folder: the same folder (not
// another renamed to its name, which folders created together can be
// with the same UIDVALIDITY) and the same UIDVALIDITY.
func (sel *imapSelected) same(f node.Folder) bool {
	return f.ID == sel.folderID && f.UIDValidity == sel.uidValidity
}

// check is what a command on the selected folder's messages sends along,
// so that it acts on this folder only, not on another that took its name
// between the session's last poll and the command.
func (sel *imapSelected) check() node.FolderCheck {
	return node.FolderCheck{ID: sel.folderID, UIDValidity: sel.uidValidity}
}

// folderVanished ends a session whose selected folder was deleted or
// renamed by another session (or recreated, with a new UIDVALIDITY): its
// UIDs mean nothing any more. RFC 9051 lets the server end the
// connection with BYE at any time; this is what Dovecot does too.
//
// In the poll after an APPEND that stored its message the session goes
// on: go-imap would send the poll's error instead of the APPEND's tagged
// OK, and a client that saw only BYE would append the message again.
// The folder's check stays due, so the next poll ends the session.
func (s *imapSession) folderVanished() error {
	if s.afterStore {
		s.sel.dirty = true
		return nil
	}
	s.log.Info("imap: selected folder vanished, disconnecting", "folder", s.sel.name)
	s.unselectLocked()
	_ = s.conn.Bye("Selected mailbox was deleted or renamed, please reconnect")
	return errors.New("imap: selected folder vanished")
}

// reportGone sends EXPUNGE for every message marked gone, highest
// sequence number first, so each number is still valid when sent.
func (s *imapSession) reportGone(w *imapserver.UpdateWriter) error {
	sel := s.sel
	idx := make([]int, 0, sel.gone)
	for i := range sel.msgs {
		if sel.msgs[i].gone {
			idx = append(idx, i)
		}
	}
	return sel.reportRemoval(idx, w.WriteExpunge)
}

// applyView compares a fresh view with the snapshot and reports the
// difference: EXPUNGE (if allowed, else the message is marked gone), FETCH
// FLAGS for changed flags, FLAGS for new keywords, EXISTS for new
// messages. The view is in UID order and UIDs only ascend, so one merge
// pass finds everything, and new messages sort after the known ones. The
// view's messages are shared node-wide and only read.
func (s *imapSession) applyView(w *imapserver.UpdateWriter, view node.FolderView, allowExpunge bool) error {
	sel := s.sel
	fresh := view.Messages
	var changed []int // positions in sel.msgs
	j := 0
	for i := range sel.msgs {
		m := &sel.msgs[i]
		for j < len(fresh) && fresh[j].UID < m.uid {
			// Cannot happen (UIDs ascend); skip rather than renumber.
			s.log.Warn("imap: message below a known UID appeared", "folder", sel.name, "uid", fresh[j].UID)
			j++
		}
		if j < len(fresh) && fresh[j].UID == m.uid {
			if !m.gone && !sameFlags(m.flags, fresh[j].Flags) {
				m.flags = fresh[j].Flags
				changed = append(changed, i)
			}
			j++
			continue
		}
		if !m.gone {
			m.gone = true
			sel.gone++
		}
	}
	added := make([]imapMsg, len(fresh)-j)
	for k := range added {
		added[k] = newIMAPMsg(fresh[j+k])
	}
	// Every message, not just the changed ones: a STORE through this
	// session has already put its flags in the snapshot.
	newKeywords := sel.scanKeywords(sel.msgs)
	changedUIDs := make([]uint32, len(changed))
	for k, i := range changed {
		changedUIDs[k] = sel.msgs[i].uid
	}
	if allowExpunge && sel.gone > 0 {
		if err := s.reportGone(w); err != nil { // renumbers: positions are stale after this
			return err
		}
	}
	if sel.scanKeywords(added) || newKeywords {
		if err := w.WriteMailboxFlags(sel.mailboxFlags()); err != nil {
			return err
		}
	}
	for _, uid := range changedUIDs {
		if i, ok := sel.index(uid); ok {
			m := &sel.msgs[i]
			if err := w.WriteMessageFlags(uint32(i+1), imap.UID(m.uid), imapFlags(m.flags)); err != nil {
				return err
			}
		}
	}
	if len(added) > 0 {
		sel.msgs = append(sel.msgs, added...)
		if err := w.WriteNumMessages(uint32(len(sel.msgs))); err != nil {
			return err
		}
	}
	sel.modSeq = view.Folder.ModSeq
	sel.uidNext = view.Folder.UIDNext
	return nil
}

// sameFlags reports whether a and b hold the same flags, in any order.
func sameFlags(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, f := range a {
		if !slices.Contains(b, f) {
			return false
		}
	}
	return true
}

// Expunge removes \Deleted messages (EXPUNGE, UID EXPUNGE, and CLOSE,
// which expunges silently) and reports each removed message the client
// knew, highest sequence number first.
func (s *imapSession) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sel, addr, err := s.selected()
	if err != nil {
		return err
	}
	// CLOSE passes a writer that writes nothing; it is the only caller
	// that does. CLOSE of a read-only folder just closes (RFC 9051
	// section 6.4.2).
	closing := *w == (imapserver.ExpungeWriter{})
	if sel.readOnly {
		if closing {
			return nil
		}
		return errIMAPReadOnly
	}
	var list []uint32 // nil: every \Deleted message of the folder
	if uids != nil {
		idx, err := sel.resolve(*uids, false)
		if err != nil {
			return err
		}
		if len(idx) == 0 {
			return nil
		}
		list = sel.uids(idx)
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	removed, err := s.srv.store.Expunge(ctx, addr, sel.name, list, true, sel.check())
	if closing && errors.Is(err, node.ErrNoFolder) {
		// The folder was deleted, or another took its name: there is
		// nothing of this selection to expunge, and CLOSE still closes.
		return nil
	}
	if err != nil {
		return s.storeError("expunge", err, imap.ResponseCodeNonExistent)
	}
	return s.expungeFromSnapshot(removed, w.WriteExpunge)
}

// expungeFromSnapshot drops removed UIDs from the snapshot and reports
// each, highest sequence number first. UIDs the client never saw are not
// reported.
func (s *imapSession) expungeFromSnapshot(removed []uint32, report func(seq uint32) error) error {
	sel := s.sel
	var idx []int
	for _, uid := range removed {
		if i, ok := sel.index(uid); ok {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	return sel.reportRemoval(slices.Compact(idx), report)
}

// Copy copies messages by reference (no body is copied) and names the
// copies with COPYUID (RFC 4315).
func (s *imapSession) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.copyLocked(numSet, dest, false)
}

// Move is COPY and EXPUNGE of the sources in one commit (RFC 6851): the
// COPYUID comes first, in an untagged OK, then the EXPUNGEs.
func (s *imapSession) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := s.copyLocked(numSet, dest, true)
	if err != nil || data == nil {
		return err
	}
	if err := w.WriteCopyData(data); err != nil {
		return err
	}
	moved, _ := data.SourceUIDs.Nums()
	return s.expungeFromSnapshot(imapUIDs(moved), w.WriteExpunge)
}

func (s *imapSession) copyLocked(numSet imap.NumSet, dest string, move bool) (*imap.CopyData, error) {
	sel, addr, err := s.selected()
	if err != nil {
		return nil, err
	}
	if move && sel.readOnly {
		return nil, errIMAPReadOnly
	}
	d, err := lookupFolder(dest, imap.ResponseCodeTryCreate)
	if err != nil {
		return nil, err
	}
	if move && d == sel.name {
		return nil, imapNo(imap.ResponseCodeCannot, "Source and destination are the same mailbox")
	}
	idx, err := sel.resolve(numSet, true)
	if err != nil || len(idx) == 0 {
		return nil, err
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	res, err := s.srv.store.Copy(ctx, addr, sel.name, d, sel.uids(idx), move, sel.check())
	if err != nil {
		op := "copy"
		if move {
			op = "move"
		}
		if errors.Is(err, node.ErrFolderChanged) {
			// The source is gone, not the destination: TRYCREATE would
			// have the client create a folder that exists.
			return nil, s.storeError(op, err, imap.ResponseCodeNonExistent)
		}
		return nil, s.storeError(op, err, imap.ResponseCodeTryCreate)
	}
	if len(res.SrcUIDs) == 0 || len(res.SrcUIDs) != len(res.DstUIDs) {
		return nil, nil // nothing copied (all expunged meanwhile): OK without COPYUID
	}
	// COPYUID pairs the two sets element by element (RFC 4315 section
	// 3): sort the pairs by source UID, then write both sets in that
	// order.
	type pair struct{ src, dst uint32 }
	pairs := make([]pair, len(res.SrcUIDs))
	for i := range pairs {
		pairs[i] = pair{res.SrcUIDs[i], res.DstUIDs[i]}
	}
	slices.SortFunc(pairs, func(a, b pair) int { return int(int64(a.src) - int64(b.src)) })
	data := &imap.CopyData{UIDValidity: res.UIDValidity}
	for _, p := range pairs {
		data.SourceUIDs = appendUIDRun(data.SourceUIDs, p.src)
		data.DestUIDs = appendUIDRun(data.DestUIDs, p.dst)
	}
	return data, nil
}

func imapUIDs(uids []imap.UID) []uint32 {
	out := make([]uint32, len(uids))
	for i, u := range uids {
		out[i] = uint32(u)
	}
	return out
}

// appendUIDRun adds uid at the end of set, extending the last range when
// uid follows it. Unlike UIDSet.AddNum it keeps the order it is given,
// which COPYUID's paired sets need.
func appendUIDRun(set imap.UIDSet, uid uint32) imap.UIDSet {
	if n := len(set); n > 0 && uint32(set[n-1].Stop) == uid-1 && uid != 0 {
		set[n-1].Stop = imap.UID(uid)
		return set
	}
	return append(set, imap.UIDRange{Start: imap.UID(uid), Stop: imap.UID(uid)})
}
