package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"powermail/fsm"
)

// Mail access (IMAP, POP3). Reads wait for the read index first, so a
// session on any node sees every write acknowledged anywhere before the
// call began (Promise 3). Writes go through Apply, which returns once
// this node has applied them, so a session sees its own writes at once.

// readBarrier waits for the read index, as a temporary failure.
func (n *Node) readBarrier(ctx context.Context) error {
	if err := n.Barrier(ctx); err != nil {
		return fmt.Errorf("%w: read barrier: %v", ErrUnavailable, err)
	}
	return nil
}

// accessErr maps directory and cluster errors to the access sentinels.
func accessErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fsm.ErrDeleteCondition):
		return fmt.Errorf("%w: %v", ErrDeleteCondition, err)
	case errors.Is(err, fsm.ErrFolderChanged):
		return fmt.Errorf("%w: %w: %v", ErrNoFolder, ErrFolderChanged, err)
	case errors.Is(err, fsm.ErrNoFolder), errors.Is(err, fsm.ErrNotFound):
		return fmt.Errorf("%w: %v", ErrNoFolder, err)
	case errors.Is(err, fsm.ErrExists):
		return fmt.Errorf("%w: %v", ErrFolderExists, err)
	case errors.Is(err, fsm.ErrInvalid), errors.Is(err, fsm.ErrNotEmpty):
		return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	case errors.Is(err, fsm.ErrOverQuota):
		return fmt.Errorf("%w: %v", ErrOverQuota, err)
	case errors.Is(err, fsm.ErrFolderFull):
		return fmt.Errorf("%w: %v", ErrFolderFull, err)
	case errors.Is(err, fsm.ErrLocked):
		return fmt.Errorf("%w: %v", ErrLocked, err)
	case errors.Is(err, fsm.ErrBeingRemoved):
		return fmt.Errorf("%w: %v", ErrMailboxRemoving, err)
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrBodyUnavailable):
		return err
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrNotLeader), errors.Is(err, ErrIndeterminate),
		errors.Is(err, ErrRemoved), errors.Is(err, ErrClosed), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// apply commits an access command and decodes its value into out (which
// may be nil).
func (n *Node) applyAccess(ctx context.Context, cmd fsm.Command, out any) error {
	v, err := n.Apply(ctx, cmd)
	if err != nil {
		return accessErr(err)
	}
	if out == nil {
		return nil
	}
	return convert(v, out)
}

// Folders lists the folders of a mailbox, sorted by name.
func (n *Node) Folders(ctx context.Context, addr string) ([]Folder, error) {
	if err := n.readBarrier(ctx); err != nil {
		return nil, err
	}
	fs, err := n.state.Folders(addr)
	return fs, accessErr(err)
}

// Usage is a mailbox's storage use and quota, in octets.
type Usage struct {
	UsedBytes  int64
	QuotaBytes int64 // 0: unlimited
}

// Usage reads the mailbox's storage use and quota (IMAP QUOTA, RFC 9208).
func (n *Node) Usage(ctx context.Context, addr string) (Usage, error) {
	if err := n.readBarrier(ctx); err != nil {
		return Usage{}, err
	}
	mb, err := n.state.Mailbox(addr)
	if err != nil {
		return Usage{}, accessErr(err)
	}
	return Usage{UsedBytes: mb.UsedBytes, QuotaBytes: mb.QuotaBytes}, nil
}

// Folder reads one folder record.
func (n *Node) Folder(ctx context.Context, addr, name string) (Folder, error) {
	if err := n.readBarrier(ctx); err != nil {
		return Folder{}, err
	}
	f, err := n.state.Folder(addr, name)
	return f, accessErr(err)
}

// View reads a folder and all its messages at one index. The messages
// may be shared with other sessions (see viewcache.go): callers must not
// modify them.
func (n *Node) View(ctx context.Context, addr, name string) (FolderView, error) {
	if err := n.readBarrier(ctx); err != nil {
		return FolderView{}, err
	}
	return n.localView(addr, name)
}

// localView is View without the read barrier: this node's state as it
// is.
func (n *Node) localView(addr, name string) (FolderView, error) {
	a, err := fsm.ParseAddress(addr)
	if err != nil {
		return FolderView{}, accessErr(err)
	}
	key := a.Key() + "\x00" + fsm.CanonicalFolder(name)
	f, err := n.state.Folder(addr, name)
	if err != nil {
		return n.readView(key, addr, name)
	}
	if msgs, ok := n.views.get(key, f); ok {
		return FolderView{Folder: f, Messages: msgs}, nil
	}
	fl, lead := n.views.join(key)
	if lead {
		return n.leadView(fl, key, addr, name, f)
	}
	<-fl.done
	if v, ok := sharedView(fl, f); ok {
		return v, nil
	}
	// Read before the change this caller saw, of another folder (or
	// failed): its own.
	return n.readView(key, addr, name)
}

// sharedView is the view of fl for a caller that read folder record f,
// if it is of the same folder and at least as new. The same folder: the
// ID and the UIDVALIDITY, as fsm.FolderCheck has it, since a mailbox
// removed and added again numbers its folders from 1 again, its default
// folders at ModSeq 0 (an older view of the removed mailbox's INBOX
// passed for the new one's). At the same ModSeq the messages are the
// same, and the caller's own record is taken: a subscription changes it
// without a ModSeq.
func sharedView(fl *viewFlight, f fsm.Folder) (FolderView, bool) {
	if fl.err != nil || fl.folder.ID != f.ID || fl.folder.UIDValidity != f.UIDValidity || fl.folder.ModSeq < f.ModSeq {
		return FolderView{}, false
	}
	if fl.folder.ModSeq == f.ModSeq {
		return FolderView{Folder: f, Messages: fl.msgs}, true
	}
	return FolderView{Folder: fl.folder, Messages: fl.msgs}, true
}

// leadView makes the read fl that others joined, and lands it however
// the read ends (a panic included: else they would wait for ever).
func (n *Node) leadView(fl *viewFlight, key, addr, name string, f fsm.Folder) (v FolderView, err error) {
	fl.err = ErrUnavailable // until the read ends well
	defer func() {
		fl.folder, fl.msgs = v.Folder, v.Messages
		if err == nil {
			fl.err = nil
		}
		n.views.land(key, fl)
	}()
	// A read that landed between the caller's get and the join.
	if msgs, ok := n.views.get(key, f); ok {
		return FolderView{Folder: f, Messages: msgs}, nil
	}
	return n.readView(key, addr, name)
}

// readView brings the cached view of key up to date from the state
// (fsm.State.ViewSince) and caches it.
func (n *Node) readView(key, addr, name string) (FolderView, error) {
	n.views.reads.Add(1)
	prevFolder, prev := n.views.previous(key)
	f, msgs, err := n.state.ViewSince(addr, name, prevFolder, prev)
	if err != nil {
		return FolderView{}, accessErr(err)
	}
	n.views.put(key, f, msgs)
	return FolderView{Folder: f, Messages: msgs}, nil
}

// CreateFolder creates a folder (specialUse may be empty).
func (n *Node) CreateFolder(ctx context.Context, addr, name, specialUse string) error {
	return n.applyAccess(ctx, &fsm.FolderCreate{Mailbox: addr, Name: name, SpecialUse: specialUse, Distinct: n.encodingAtLeast(fsm.EncodingJSON4)}, nil)
}

// DeleteFolder deletes a folder and its messages, dropping their body
// references.
//
// A folder of more than Config.EntryMessages is first emptied in
// entries of that size (emptyFolder), so that no replica stalls on it.
func (n *Node) DeleteFolder(ctx context.Context, addr, name string) error {
	if fsm.CanonicalFolder(name) != "INBOX" {
		if err := n.emptyFolder(ctx, addr, name, false, false); err != nil {
			return err
		}
	}
	return n.applyAccess(ctx, &fsm.FolderDelete{Mailbox: addr, Name: name}, nil)
}

// DeleteFolderIf deletes folder name, which the caller has just read
// and found as cond asks, only if it is still so: the undo of a folder
// a failed command made. From command encoding 16 the condition is
// checked in the delete's own entry (fsm.FolderDeleteIf), so a message
// another session APPENDs or COPYs into the folder, or a folder it
// creates below it, after the caller's read keeps the folder:
// ErrDeleteCondition, and nothing changes. Below 16 a release that
// reads up to 15 would drop the condition and delete anyway, so none is
// sent: the delete is unconditional and the caller's read is the only
// check, as before (DESIGN.md, Not yet). The folder is expected empty,
// so it is not emptied in pieces first as DeleteFolder does.
func (n *Node) DeleteFolderIf(ctx context.Context, addr, name string, cond FolderDeleteIf) error {
	del := &fsm.FolderDelete{Mailbox: addr, Name: name}
	if n.encodingAtLeast(fsm.EncodingJSON16) {
		del.If = &cond
	}
	return n.applyAccess(ctx, del, nil)
}

// RenameFolder renames a folder and the folders below it.
//
// Renaming INBOX makes a folder (INBOX stays), which the state machine
// does not count against fsm.MaxFolders as it counts a CREATE: that
// check is made here, before proposing, so that a client cannot make
// folders without end by renaming INBOX again and again. Renames racing
// on other nodes can each pass it, so the limit can be passed by as many
// as run at once (fsm/DESIGN.md, Not yet).
func (n *Node) RenameFolder(ctx context.Context, addr, from, to string) error {
	if fsm.CanonicalFolder(from) == "INBOX" {
		if err := n.folderRoom(ctx, addr); err != nil {
			return err
		}
		if done, err := n.renameLargeInbox(ctx, addr, to); done {
			return err
		}
	}
	v4 := n.encodingAtLeast(fsm.EncodingJSON4)
	return n.applyAccess(ctx, &fsm.FolderRename{Mailbox: addr, From: from, To: to, Distinct: v4, InboxChild: v4}, nil)
}

// folderRoom refuses a command that makes a folder when the mailbox
// already has fsm.MaxFolders, as of the leader's state.
func (n *Node) folderRoom(ctx context.Context, addr string) error {
	fs, err := n.Folders(ctx, addr)
	if err != nil {
		return err
	}
	if len(fs) >= fsm.MaxFolders {
		return fmt.Errorf("%w: mailbox %s has %d folders, the most allowed", ErrInvalidArgument, addr, len(fs))
	}
	return nil
}

// SubscribeFolder sets a folder's subscription.
func (n *Node) SubscribeFolder(ctx context.Context, addr, name string, subscribed bool) error {
	return n.applyAccess(ctx, &fsm.FolderSubscribe{Mailbox: addr, Name: name, Subscribed: subscribed}, nil)
}

// StoreFlags changes the flags of the listed UIDs and returns the
// messages that changed (UID and new flags).
//
// UIDs that still make more ranges than one command carries (IMAP's
// "UID STORE $" after a SEARCH that matched every other message of a
// large folder) are stored by several commands, in ascending order, as
// Expunge does. If one fails, the ones before it stay done and are not
// returned: RFC 9051 §6.4.6 does not make STORE all or nothing, and the
// session reports what changed at its next poll. So are UIDs that cover
// more than Config.EntryMessages messages (pieces.go).
func (n *Node) StoreFlags(ctx context.Context, addr, folder string, uids []uint32, op FlagOp, flags []string, expect ...FolderCheck) ([]StoredMessage, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	var out []StoredMessage
	check := n.folderCheck(expect)
	fold := n.encodingAtLeast(fsm.EncodingJSON4)
	for _, rs := range n.pieces(addr, folder, n.fitRanges(addr, folder, uids, check), check) {
		var changed []StoredMessage
		cmd := &fsm.FlagsStore{Mailbox: addr, Folder: folder, UIDs: rs, Op: op, Flags: flags, Expect: check, FoldKeywords: fold}
		if err := n.applyAccess(ctx, cmd, &changed); err != nil {
			return nil, err
		}
		out = append(out, changed...)
	}
	return out, nil
}

// folderCheck is the first of expect, for a command on a folder's
// messages, if the cluster's command encoding lets proposers write it;
// without it the command acts on whatever folder has the name.
func (n *Node) folderCheck(expect []FolderCheck) *fsm.FolderCheck {
	if len(expect) == 0 {
		return nil
	}
	if !n.encodingAtLeast(fsm.EncodingJSON4) {
		return nil
	}
	c := expect[0]
	return &c
}

// encodingAtLeast reports whether the cluster's command encoding lets
// proposers write enc: a command that needs it is applied only by the
// releases that know what it means.
func (n *Node) encodingAtLeast(enc int) bool {
	s, err := n.state.Settings()
	return err == nil && s.CommandEncoding >= enc
}

// Expunge removes messages (see frontend.MailStore) and returns their UIDs.
//
// UIDs that still make more ranges than one command carries (a client
// that deletes every other message of a large maildrop) are expunged by
// several commands, in ascending order. If one fails, the ones before it
// stay done: RFC 1939 §6 allows a POP3 QUIT that fails to have removed
// some of the messages, and an IMAP session learns of them at its next
// poll. Neither may be refused for ever, which a POP3 client would meet
// by downloading the same mail again in every session. So are UIDs that
// cover more than Config.EntryMessages messages (pieces.go), so that no
// replica stalls on one entry.
func (n *Node) Expunge(ctx context.Context, addr, folder string, uids []uint32, onlyDeleted bool, expect ...FolderCheck) ([]uint32, error) {
	check := n.folderCheck(expect)
	var ps [][]fsm.UIDRange
	if uids == nil {
		if ps = n.pieces(addr, folder, wholeFolder, check); len(ps) <= 1 {
			var out []uint32
			err := n.applyAccess(ctx, &fsm.Expunge{Mailbox: addr, Folder: folder, OnlyDeleted: onlyDeleted, Expect: check}, &out)
			return out, err
		}
	} else {
		ps = n.pieces(addr, folder, n.fitRanges(addr, folder, uids, check), check)
	}
	var out []uint32
	for _, rs := range ps {
		var removed []uint32
		cmd := &fsm.Expunge{Mailbox: addr, Folder: folder, UIDs: rs, OnlyDeleted: onlyDeleted, Expect: check}
		if err := n.applyAccess(ctx, cmd, &removed); err != nil {
			return out, err
		}
		out = append(out, removed...)
	}
	return out, nil
}

// Copy references the listed messages from dst; with move, the sources
// go in the same commit.
//
// A MOVE or COPY of more than Config.EntryMessages messages is proposed
// as several (pieces.go), so that no replica stalls on one entry. Each
// MOVE piece moves each of its messages or none, so a failure part way
// leaves every message in exactly one of the two folders, which RFC 6851
// §3.3 asks of a MOVE that fails; the session learns of the pieces
// done at its next poll. A COPY that fails part way expunges its copies
// again (copypieces.go): RFC 9051 §6.4.7 has a failed COPY leave the
// destination as it was.
func (n *Node) Copy(ctx context.Context, addr, src, dst string, uids []uint32, move bool, expect ...FolderCheck) (CopyResult, error) {
	if len(uids) == 0 {
		f, err := n.Folder(ctx, addr, dst)
		return CopyResult{UIDValidity: f.UIDValidity}, err
	}
	check := n.folderCheck(expect)
	rs := n.fitRanges(addr, src, uids, check)
	ps := n.pieces(addr, src, rs, check)
	switch {
	case move:
		return n.movePieces(ctx, addr, src, dst, ps, check)
	case check == nil || len(ps) == 1:
		// Without the check, pieces could not be sized on the folder
		// the session named (nor undone by the folder's ID).
		res, err := n.copyOnce(ctx, &fsm.Copy{Mailbox: addr, From: src, To: dst, UIDs: rs, Expect: check})
		return CopyResult{UIDValidity: res.UIDValidity, SrcUIDs: res.Src, DstUIDs: res.Dst}, err
	}
	return n.copyPieces(ctx, addr, src, dst, ps, check)
}

// movePieces moves the messages of src in ps to dst, one entry a piece.
func (n *Node) movePieces(ctx context.Context, addr, src, dst string, ps [][]fsm.UIDRange, check *fsm.FolderCheck) (CopyResult, error) {
	var out CopyResult
	known := true // every piece answered its UIDs
	for _, rs := range ps {
		res, err := n.copyOnce(ctx, &fsm.Copy{Mailbox: addr, From: src, To: dst, UIDs: rs, Move: true, Expect: check})
		// A repeat answers no UIDVALIDITY below command encoding 14
		// (from 14 the first commit's, with its UIDs); a piece that
		// found its messages expunged answers its destination's, and
		// its empty UIDs are known. A destination deleted and made again between
		// two pieces has a new UIDVALIDITY: the UIDs before and after
		// are of two folders, and one COPYUID cannot name both (RFC 4315
		// §3).
		known = known && res.UIDValidity != 0 && (out.UIDValidity == 0 || out.UIDValidity == res.UIDValidity)
		out.UIDValidity = res.UIDValidity
		out.SrcUIDs, out.DstUIDs = append(out.SrcUIDs, res.Src...), append(out.DstUIDs, res.Dst...)
		if err != nil {
			return out, err
		}
	}
	if !known && len(ps) > 1 {
		// A piece repeated after a leader change below 14 cannot say
		// which UIDs it gave, nor one that went to a replaced destination which
		// folder they are in: a COPYUID would pair the wrong ones.
		out.SrcUIDs, out.DstUIDs = nil, nil
	}
	return out, nil
}

// copyOnce proposes one Copy.
func (n *Node) copyOnce(ctx context.Context, cmd *fsm.Copy) (fsm.CopyResult, error) {
	var res fsm.CopyResult
	if !n.encodingAtLeast(fsm.EncodingJSON8) {
		return res, n.applyAccess(ctx, cmd, &res)
	}
	// Named, so that a commit whose outcome a leader change hid is
	// proposed again without copying twice: the client then gets its OK,
	// not a NO it would answer by copying again. Below command encoding
	// 14 the OK has no COPYUID, which the repeat cannot know; from 14 the
	// repeat answers the UIDs the commit gave (fsm.Copy.ID).
	cmd.ID = "copy-" + deliveryID()
	var v any
	err := n.untilKnown(ctx, "copy", cmd.ID, func(ctx context.Context) (err error) {
		v, err = n.Apply(ctx, cmd)
		return err
	})
	if err == nil {
		err = convert(v, &res)
	}
	return res, accessErr(err)
}

// uidRanges turns UIDs into sorted, merged ranges.
func uidRanges(uids []uint32) []fsm.UIDRange {
	s := slices.Compact(slices.Sorted(slices.Values(uids)))
	var out []fsm.UIDRange
	for _, u := range s {
		if u == 0 {
			continue
		}
		if k := len(out); k > 0 && out[k-1][1]+1 == u {
			out[k-1][1] = u
			continue
		}
		out = append(out, fsm.UIDRange{u, u})
	}
	return out
}

// fitRanges turns the UIDs a session names in one of its folders into
// ranges that fit one command (fsm.MaxUIDRanges). Sessions name the UIDs
// they know, and in a folder where mail was deleted here and there,
// "every message" (POP3 DELE of each and QUIT, IMAP STORE 1:* or MOVE
// 1:*) is one range per message: past the limit the command would be
// refused, a POP3 QUIT every time it is retried. A gap between two
// ranges in which the folder holds no message is closed, which changes
// nothing the command does (missing UIDs are skipped), until the ranges
// fit. Gaps that hold a message stay open, so a client that really names
// more separate runs than that is still refused.
//
// This node's state decides, and only for the folder the session took
// the UIDs from (expect, which the command carries, so it cannot act on
// another folder that takes the name meanwhile; without it nothing is
// closed). No message can
// appear later in a gap it found empty: a folder gives out UIDs in
// ascending order, so a message below UID c, where c < UIDNEXT here, was
// given its UID before this state, and is in it unless already removed
// for good.
func (n *Node) fitRanges(addr, folder string, uids []uint32, expect *fsm.FolderCheck) []fsm.UIDRange {
	rs := uidRanges(uids)
	if len(rs) <= fsm.MaxUIDRanges || expect == nil {
		return rs
	}
	v, err := n.localView(addr, folder)
	if err != nil || v.Folder.ID != expect.ID || v.Folder.UIDValidity != expect.UIDValidity {
		return rs // the command fails on its own, as it should
	}
	msgs := v.Messages
	out := append(make([]fsm.UIDRange, 0, len(rs)), rs[0])
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		// The first message above the last range, if any, is in the gap
		// if it is below r.
		i, _ := slices.BinarySearchFunc(msgs, last[1]+1, func(m StoredMessage, uid uint32) int {
			return cmp.Compare(m.UID, uid)
		})
		if r[0] < v.Folder.UIDNext && (i == len(msgs) || msgs[i].UID >= r[0]) {
			last[1] = r[1]
			continue
		}
		out = append(out, r)
	}
	return out
}

// replicasOutdated reports whether a replica set chosen a moment ago no
// longer satisfies the directory (a member removed, the write quorum
// raised), as of the leader's state.
func (n *Node) replicasOutdated(ctx context.Context, replicas []string) bool {
	if n.Barrier(ctx) != nil {
		return true // cannot tell: a temporary answer is the safe one
	}
	settings, err := n.state.Settings()
	if err != nil || len(replicas) < settings.WriteQuorum {
		return true
	}
	members, err := n.state.Members()
	if err != nil {
		return true
	}
	for _, id := range replicas {
		if !slices.ContainsFunc(members, func(m fsm.Member) bool { return m.ID == id }) {
			return true
		}
	}
	return false
}

// Append writes body to R replicas, like a delivery, and commits it to
// one folder with the given flags and internal date (zero: now).
func (n *Node) Append(ctx context.Context, addr, folder string, flags []string, date time.Time, body io.Reader) (AppendResult, error) {
	return n.appendMessage(ctx, addr, folder, flags, date, body, "")
}

// appendMessage is Append, keeping POP3 unique-id uidl for the message
// when not "" (an INBOX message restored from another server; the
// caller checks that the cluster's encoding allows it, fsm/pop3uidl.go).
func (n *Node) appendMessage(ctx context.Context, addr, folder string, flags []string, date time.Time, body io.Reader, uidl string) (AppendResult, error) {
	if err := n.appendAllowed(ctx, addr, folder); err != nil {
		return AppendResult{}, err
	}
	settings, err := n.state.Settings()
	if err != nil {
		return AppendResult{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	h, size, replicas, err := n.replicate(ctx, settings, body)
	if err != nil {
		return AppendResult{}, err
	}
	if date.IsZero() {
		date = time.Now()
	}
	cmd := &fsm.Deliver{ID: deliveryID(), Hash: h.String(), Size: size, Replicas: replicas,
		Mailboxes: []string{addr}, InternalDate: date.UnixMilli(), Flags: flags, Folder: folder, POP3UIDL: uidl}
	v, index, err := n.commitDelivery(ctx, cmd)
	if err != nil {
		if errors.Is(err, fsm.ErrInvalid) && n.replicasOutdated(ctx, replicas) {
			// The members or the write quorum changed under the write:
			// the same append a moment later goes through.
			return AppendResult{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return AppendResult{}, accessErr(err)
	}
	var res fsm.DeliverResult
	if err := convert(v, &res); err != nil {
		return AppendResult{}, err
	}
	if code, bad := res.Rejected[addr]; bad {
		return AppendResult{}, accessErr(fsm.FromCode(code, res.Messages[addr]))
	}
	// commitDelivery returns once the leader applied; make the append
	// visible to this session before answering (no read-index round
	// trip: the entry's own index is enough).
	if err := n.state.WaitApplied(ctx, index); err != nil {
		return AppendResult{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return AppendResult{UIDValidity: res.UIDValidity, UID: res.UIDs[addr]}, nil
}

// appendAllowed checks, before any body is written, that the folder
// exists and the mailbox is under its quota and not being removed. The
// commit checks again.
func (n *Node) appendAllowed(ctx context.Context, addr, folder string) error {
	if _, err := n.Folder(ctx, addr, folder); err != nil {
		return err
	}
	mb, err := n.state.Mailbox(addr)
	if err != nil {
		return accessErr(err)
	}
	if mb.Removing {
		return fmt.Errorf("%w: %s", ErrMailboxRemoving, addr)
	}
	if mb.QuotaBytes > 0 && mb.UsedBytes >= mb.QuotaBytes {
		return fmt.Errorf("%w: mailbox %s uses %d of %d bytes", ErrOverQuota, addr, mb.UsedBytes, mb.QuotaBytes)
	}
	return nil
}
