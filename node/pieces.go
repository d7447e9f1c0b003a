package node

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"strings"

	"powermail/fsm"
)

// DefaultEntryMessages is Config.EntryMessages's default. Every replica
// applies an entry in one go and every other commit (every delivery)
// waits behind it; removing or moving a message costs 7-12 µs of apply
// (BENCHMARKS.md, "Large folder operations"), so 2,000 messages hold
// the state machine for about 15-25 ms.
const DefaultEntryMessages = 2000

// wholeFolder is the UID range of every message of a folder.
var wholeFolder = []fsm.UIDRange{{1, math.MaxUint32}}

// pieces splits the UID ranges of a command on folder into runs that
// each cover at most Config.EntryMessages of the messages this node's
// state holds there, and at most fsm.MaxUIDRanges ranges, in ascending
// order. Their union is rs: a message that arrives after this state
// falls in the piece that covers its UID (the last, for a new one). The
// state only sizes the pieces, so it may lag; it is read only for the
// folder the command names by expect (without it, the pieces are
// fsm.MaxUIDRanges chunks as before).
func (n *Node) pieces(addr, folder string, rs []fsm.UIDRange, expect *fsm.FolderCheck) [][]fsm.UIDRange {
	if expect == nil {
		return slices.Collect(slices.Chunk(rs, fsm.MaxUIDRanges))
	}
	// Nearly every folder fits one piece: its record says so without
	// reading its messages.
	if f, err := n.state.Folder(addr, folder); err == nil && f.Messages <= int64(n.cfg.EntryMessages) {
		return slices.Collect(slices.Chunk(rs, fsm.MaxUIDRanges))
	}
	v, err := n.localView(addr, folder)
	if err != nil || v.Folder.ID != expect.ID || v.Folder.UIDValidity != expect.UIDValidity {
		return slices.Collect(slices.Chunk(rs, fsm.MaxUIDRanges))
	}
	return splitPieces(rs, v.Messages, n.cfg.EntryMessages)
}

// splitPieces cuts rs (ascending, disjoint) so that no piece covers
// more than limit of msgs (ascending by UID) or holds more than
// fsm.MaxUIDRanges ranges.
func splitPieces(rs []fsm.UIDRange, msgs []StoredMessage, limit int) [][]fsm.UIDRange {
	var out [][]fsm.UIDRange
	var cur []fsm.UIDRange
	count := 0
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur, count = nil, 0
	}
	at := func(uid uint32) int {
		i, _ := slices.BinarySearchFunc(msgs, uid, func(m StoredMessage, u uint32) int { return cmp.Compare(m.UID, u) })
		return i
	}
	for _, r := range rs {
		for {
			if count >= limit || len(cur) == fsm.MaxUIDRanges {
				flush()
			}
			i, j := at(r[0]), len(msgs)
			if r[1] < math.MaxUint32 {
				j = at(r[1] + 1)
			}
			if count+j-i <= limit {
				cur = append(cur, r)
				count += j - i
				break
			}
			// A message of r lies above cut, so cut < r[1].
			cut := msgs[i+limit-count-1].UID
			cur = append(cur, fsm.UIDRange{r[0], cut})
			flush()
			r[0] = cut + 1
		}
	}
	flush()
	return out
}

// emptyFolder expunges the messages of a folder about to be deleted in
// entries of at most Config.EntryMessages, all but the last piece (with
// all, the last too): the command that deletes it then removes at most
// that many, and what arrived meanwhile. Each piece names the folder it
// was sized on, so one that was deleted and made again meanwhile is
// left alone (the delete itself then acts on the name, as it always
// has). A folder that fits one entry, and a cluster whose encoding
// cannot carry the check, are left to the delete. An error leaves the
// pieces before it expunged: the messages were being deleted, and
// repeating the command finishes the job.
//
// A removal (ride) proposes each piece again while a leader change
// hides its outcome (untilKnown): a repeat expunges the UIDs its range
// still holds, none if the first took, and the mailbox is going anyway.
func (n *Node) emptyFolder(ctx context.Context, addr, name string, all, ride bool) error {
	if !n.encodingAtLeast(fsm.EncodingJSON4) {
		return nil
	}
	v, err := n.View(ctx, addr, name)
	if err != nil || len(v.Messages) == 0 || (!all && len(v.Messages) <= n.cfg.EntryMessages) {
		return nil // the delete reports what is wrong
	}
	check := &fsm.FolderCheck{ID: v.Folder.ID, UIDValidity: v.Folder.UIDValidity}
	ps := splitPieces(wholeFolder, v.Messages, n.cfg.EntryMessages)
	if !all {
		ps = ps[:len(ps)-1]
	}
	for _, rs := range ps {
		if err := ctx.Err(); err != nil {
			// The leader's own apply may not look at ctx: a caller that
			// gave up stops the pieces here.
			return accessErr(err)
		}
		cmd := &fsm.Expunge{Mailbox: addr, Folder: name, UIDs: rs, Expect: check}
		var err error
		if ride {
			_, err = n.applyUntilKnown(ctx, "mailbox removal: a piece", addr, cmd)
			err = accessErr(err)
		} else {
			err = n.applyAccess(ctx, cmd, nil)
		}
		if errors.Is(err, ErrNoFolder) {
			// Deleted, renamed or replaced meanwhile: the rest is the
			// delete's, which acts on the name (RFC 9051 §6.3.9) and
			// says whether one still has it.
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// RemoveMailbox removes a mailbox and its messages (fsm.MailboxRemove).
// A mailbox of more than Config.EntryMessages messages is first emptied
// folder by folder, in entries of at most that many, so that no replica
// stalls on the removal. At command encoding 10 it is first marked as
// being removed (fsm.MailboxUpdate.Removing), so that mail for it is
// refused (RCPT 450 4.2.1, and a delivery resolved before the mark is
// refused at commit) instead of answered 250 and removed with it; below
// 10, mail delivered meanwhile goes with the mailbox. A mailbox of one
// entry is removed by that entry, with nothing between RCPT and removal
// to protect, so it is not marked: a bulk deprovisioning stays one entry
// a mailbox. A mailbox the removal would refuse (a forward keeps copies
// in it) is neither marked nor emptied. An entry whose outcome a leader
// change hid (the mark, a piece, the removal) is proposed again, for up
// to commitRetryWindow, keeping the hold: each repeat leaves what the
// first did. An error part way leaves the pieces before it expunged and
// takes back this removal's mark (unmarkRemoving), and repeating the
// removal finishes it.
//
// Below encoding 12 the mark is one bit: a removal that finds it set
// does not set it and clears it only if the removal is refused, but the
// one that set it clears it when it fails, even while another runs on.
// From 12 every removal holds the mark under a name of its own
// (fsm.MailboxUpdate.Remover), found set or not, and a failure releases
// only its own hold: the mark stays while any removal holds it. A
// refusal at the end (a forward keeps copies) clears the whole mark
// below 14, and from 14 ends only this removal's hold (unmarkRefused).
func (n *Node) RemoveMailbox(ctx context.Context, addr string) (any, error) {
	if err := n.readBarrier(ctx); err != nil {
		return nil, err
	}
	mb, err := n.state.Mailbox(addr)
	fw, ferr := n.state.Forward(addr)
	if err != nil {
		return n.Apply(ctx, &fsm.MailboxRemove{Address: addr}) // it says what is wrong
	}
	large := mb.Messages > int64(n.cfg.EntryMessages) && (ferr != nil || !fw.KeepCopy)
	// A mark found here was left by a removal that failed and could not
	// clear it, or is held by one still running (on this node or
	// another): nothing tells the two apart.
	found, set, remover := mb.Removing, false, ""
	if large && n.encodingAtLeast(fsm.EncodingJSON12) {
		remover = deliveryID() // a random name, as a delivery's
	}
	if large && (remover != "" || !found && n.encodingAtLeast(fsm.EncodingJSON10)) {
		set = true
		if err := n.markRemovingUntilKnown(ctx, addr, remover); err != nil {
			n.unmarkRemoving(ctx, addr, remover, err) // its outcome may be unknown
			return nil, err
		}
	}
	v, err := n.removeInPieces(ctx, addr, large, mb.CreatedIndex)
	switch {
	case err == nil:
	case (set || found) && errors.Is(err, fsm.ErrNotEmpty):
		n.unmarkRefused(ctx, addr, remover, found, err)
	case set:
		// Only this removal's own: clearing a mark found (below 12) or
		// another's hold (from 12) for a failure of this removal's own
		// would let mail in, answered 250, that a running removal then
		// removes with the mailbox.
		n.unmarkRemoving(ctx, addr, remover, err)
	}
	return v, err
}

// unmarkRefused takes back the mark of a removal refused at its end (a
// forward keeps copies in the mailbox, cause), which a running removal
// meets too. Below command encoding 14 the whole mark goes, holds of
// removals still emptying the mailbox included: mail taken then would
// fall in such a removal's last, open-ended piece and be expunged. From
// 14 this removal ends its own hold (remover, when it set one) and,
// when it found the mark, a hold of no known owner (a clear naming
// none, which from 14 ends only that one: fsm.MailboxUpdate.Remover);
// another removal ends its own when it meets the refusal, and the mark
// goes with the last hold.
func (n *Node) unmarkRefused(ctx context.Context, addr, remover string, found bool, cause error) {
	if !n.encodingAtLeast(fsm.EncodingJSON14) {
		n.unmarkRemoving(ctx, addr, "", cause)
		if remover == "" || !n.encodingAtLeast(fsm.EncodingJSON14) {
			return
		}
		// Raised to 14 before that clear applied: it left this
		// removal's own hold.
	}
	if remover != "" {
		n.unmarkRemoving(ctx, addr, remover, cause)
	}
	if found {
		n.unmarkRemoving(ctx, addr, "", cause)
	}
}

// removeInPieces empties each folder of addr in pieces (with empty),
// then removes the mailbox, the one made at index created.
func (n *Node) removeInPieces(ctx context.Context, addr string, empty bool, created uint64) (any, error) {
	if empty {
		folders, err := n.state.Folders(addr)
		if err != nil {
			return nil, err
		}
		for _, f := range folders {
			if err := n.emptyFolder(ctx, addr, f.Name, true, true); err != nil {
				return nil, err
			}
		}
	}
	return nil, n.removeUntilKnown(ctx, addr, created)
}

// applyUntilKnown proposes cmd, again while its outcome is unknown (a
// leader change, no leader), for up to commitRetryWindow (untilKnown).
// Only for a command of a mailbox's removal whose repeat leaves what
// the first did: a hold on the mark, or a piece of the emptying.
func (n *Node) applyUntilKnown(ctx context.Context, what, addr string, cmd fsm.Command) (any, error) {
	var v any
	err := n.untilKnown(ctx, what, addr, func(ctx context.Context) (err error) {
		v, err = n.Apply(ctx, cmd)
		return err
	})
	return v, err
}

// markRemovingUntilKnown sets the mark of addr being removed, as the
// removal named remover, again while its outcome is unknown: a hold set
// twice is held once (below 12 the bit is set twice).
func (n *Node) markRemovingUntilKnown(ctx context.Context, addr, remover string) error {
	on := true
	_, err := n.applyUntilKnown(ctx, "mailbox removal: its mark", addr,
		&fsm.MailboxUpdate{Address: addr, Removing: &on, Remover: remover})
	return err
}

// removeUntilKnown removes the mailbox addr made at index created
// (fsm.MailboxRemove), again while the outcome is unknown. Before a
// repeat it reads after a barrier, which a new leader passes only once
// every entry it will ever commit from an old one has applied: a
// mailbox gone, or made again (another CreatedIndex), was removed by the
// attempt whose answer was lost, or by another removal, and the removal
// succeeds, as it does when the repeat finds it gone. One made again
// between that read and the repeat would be removed: an operator adding
// the mailbox while its removal still runs.
func (n *Node) removeUntilKnown(ctx context.Context, addr string, created uint64) error {
	repeat := false
	return n.untilKnown(ctx, "mailbox removal", addr, func(ctx context.Context) error {
		if repeat {
			if err := n.readBarrier(ctx); err != nil {
				return err // still unknown: read again
			}
			mb, err := n.state.Mailbox(addr)
			if errors.Is(err, fsm.ErrNotFound) || err == nil && mb.CreatedIndex != created {
				return nil
			}
		}
		_, err := n.Apply(ctx, &fsm.MailboxRemove{Address: addr})
		if repeat && errors.Is(err, fsm.ErrNotFound) {
			return nil // removed since the read: gone, as asked
		}
		repeat = true
		return err
	})
}

// markRemoving sets or clears the mark of a mailbox being removed, as
// the removal named remover (from encoding 12; "" below it). Clearing
// with no remover clears the whole mark.
func (n *Node) markRemoving(ctx context.Context, addr string, on bool, remover string) error {
	_, err := n.Apply(ctx, &fsm.MailboxUpdate{Address: addr, Removing: &on, Remover: remover})
	return err
}

// unmarkRemoving takes back the mark of a removal that failed (cause):
// its own hold when it names itself (remover), else the whole mark, so
// that the mailbox takes mail again unless another removal holds it.
// The removal's own context may be what ended it, so the clear has one
// of its own, bounded by Config.ApplyTimeout. It is best effort: a mark
// left behind makes senders retry (4xx) until `mailbox rm` is run
// again, which finishes the removal; a mailbox that is gone needs no
// clearing.
func (n *Node) unmarkRemoving(ctx context.Context, addr, remover string, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.ApplyTimeout)
	defer cancel()
	err := n.markRemoving(ctx, addr, false, remover)
	switch {
	case err == nil && markedRemoving(n.state, addr): // from 14 a clear naming none may leave holds too
		n.log.Info("mailbox removal stopped part way; the mark stays, held by another removal", "mailbox", addr, "err", cause)
	case err == nil:
		n.log.Info("mailbox removal stopped part way; mail to it is accepted again", "mailbox", addr, "err", cause)
	case !errors.Is(err, fsm.ErrNotFound):
		n.log.Warn("mailbox removal stopped part way and its mark could not be cleared: mail to it is refused (4xx) until mailbox rm is run again",
			"mailbox", addr, "err", cause, "clear_err", err)
	}
}

// markedRemoving reports whether s has addr marked as being removed.
func markedRemoving(s *fsm.State, addr string) bool {
	mb, err := s.Mailbox(addr)
	return err == nil && mb.Removing
}

// renameLargeInbox renames an INBOX of more than Config.EntryMessages
// messages in pieces (RFC 9051 §6.3.6: its messages move to a new folder
// and INBOX stays, empty): one entry that moves them all would hold every
// replica's apply, every delivery's commit with it, for seconds (10-15 s
// at a million messages, BENCHMARKS.md "Large folder operations"), and
// any user could repeat it. It makes the folder, then MOVEs INBOX's
// messages there in entries of at most that many, the last piece
// covering every UID above so that mail arriving meanwhile goes too, as
// it would with the single entry up to its commit. The moved messages
// get the new folder's UIDs (it has a UIDVALIDITY of its own either way)
// and keep their flags and dates; INBOX keeps its UIDVALIDITY and
// UIDNEXT. done is false when the single entry should do it: a small
// INBOX, or a cluster whose encoding cannot carry the folder check.
//
// A failure part way leaves the pieces before it moved: every message is
// in exactly one of the two folders (each piece is a MOVE, RFC 6851
// §3.3), the client is told NO, and renaming INBOX again, to another
// name, moves the rest. A failure before any message moved takes the
// folder it made back (dropMadeFolder), so that the NO leaves the
// mailbox as it was; only a refusal does: a piece whose outcome is
// unknown may still move its messages there.
func (n *Node) renameLargeInbox(ctx context.Context, addr, to string) (done bool, err error) {
	// The name the folder gets (RFC 9051 §6.3.4, as FolderCreate and
	// the single entry read it): the MOVEs name it as it was made.
	to = fsm.CanonicalFolder(strings.TrimSuffix(to, "/"))
	if !n.encodingAtLeast(fsm.EncodingJSON4) || to == "INBOX" {
		return false, nil
	}
	if f, err := n.state.Folder(addr, "INBOX"); err != nil || f.Messages <= int64(n.cfg.EntryMessages) {
		return false, nil // one entry; it reports what is wrong
	}
	v, err := n.View(ctx, addr, "INBOX")
	if err != nil || len(v.Messages) <= n.cfg.EntryMessages {
		return false, nil
	}
	var made Folder // as CreateFolder makes it (encoding 4 or more, above)
	create := &fsm.FolderCreate{Mailbox: addr, Name: to, Distinct: true}
	if err := n.applyAccess(ctx, create, &made); err != nil {
		return true, err
	}
	check := &fsm.FolderCheck{ID: v.Folder.ID, UIDValidity: v.Folder.UIDValidity}
	_, err = n.movePieces(ctx, addr, "INBOX", to, splitPieces(wholeFolder, v.Messages, n.cfg.EntryMessages), check)
	switch {
	case err == nil:
	case refusedPiece(err):
		n.dropMadeFolder(ctx, addr, made, err)
	default:
		// The piece's outcome is unknown: it may still commit, after
		// any look at the folder, and a delete proposed after it would
		// take its messages along.
		n.log.Info("rename of INBOX failed with a piece's outcome unknown: the folder it made is left",
			"mailbox", addr, "folder", made.Name, "err", err)
	}
	return true, err
}

// refusedPiece reports whether err, a MOVE piece's failure, is the state
// machine's refusal (or the node's before proposing): the piece moved
// nothing and never will. Any other failure (no leader, a lost answer,
// the caller gone) may hide a commit still to come.
func refusedPiece(err error) bool {
	for _, known := range []error{ErrMailboxRemoving, ErrNoFolder, ErrFolderExists, ErrInvalidArgument,
		ErrOverQuota, ErrFolderFull, ErrLocked} {
		if errors.Is(err, known) {
			return true
		}
	}
	return false
}

// dropMadeFolder deletes the folder a failed renameLargeInbox made, if
// it is still that folder (its ID and UIDVALIDITY) and no message ever
// reached it (its UIDNEXT as made): no piece moved anything, and the
// client's NO then leaves no new folder behind. A folder some piece
// moved messages to is left, as is one the failure leaves unreadable.
// From command encoding 16 the delete checks the same again in its own
// entry, and that no folder was created below it (DeleteFolderIf): a
// message another session APPENDs or COPYs to the new folder after the
// read here keeps it. Below 16 the read and the delete are two steps,
// and such a message goes with the folder (see DESIGN.md, Not yet). It
// runs only after a refused piece (refusedPiece), and past the
// caller's end, bounded by ApplyTimeout.
func (n *Node) dropMadeFolder(ctx context.Context, addr string, made Folder, cause error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.ApplyTimeout)
	defer cancel()
	f, err := n.Folder(ctx, addr, made.Name)
	switch {
	case errors.Is(err, ErrNoFolder), err == nil && (f.ID != made.ID || f.UIDValidity != made.UIDValidity):
		return // deleted or renamed by another session meanwhile: not ours to delete
	case err != nil:
		n.log.Warn("rename of INBOX failed and the folder it made could not be read: it may be left",
			"mailbox", addr, "folder", made.Name, "cause", cause, "err", err)
		return
	case f.UIDNext != made.UIDNext || f.Messages != 0:
		n.log.Info("rename of INBOX failed part way: its folder keeps what was moved", "mailbox", addr, "folder", made.Name, "cause", cause)
		return
	}
	if n.beforeDropMadeFolder != nil {
		n.beforeDropMadeFolder()
	}
	cond := FolderDeleteIf{ID: made.ID, UIDValidity: made.UIDValidity, UIDNext: made.UIDNext, Empty: true, NoChild: true}
	switch err := n.DeleteFolderIf(ctx, addr, made.Name, cond); {
	case errors.Is(err, ErrNoFolder):
		return // deleted by another session meanwhile
	case errors.Is(err, ErrDeleteCondition):
		n.log.Info("rename of INBOX failed; the folder it made got a message or a child, or was replaced, meanwhile and is left",
			"mailbox", addr, "folder", made.Name, "cause", cause, "err", err)
		return
	case err != nil:
		n.log.Warn("rename of INBOX failed before moving a message and the folder it made could not be deleted",
			"mailbox", addr, "folder", made.Name, "cause", cause, "err", err)
		return
	}
	n.log.Info("rename of INBOX failed before moving a message; the folder it made was deleted again",
		"mailbox", addr, "folder", made.Name, "cause", cause)
}
