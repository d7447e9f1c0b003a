package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"powermail/fsm"
)

// DefaultCopyUndoTimeout is Config.CopyUndoTimeout's default. Undoing
// a COPY expunges what its pieces copied, a piece of at most
// Config.EntryMessages at a time: some 500 entries for the largest
// folders (1,000,000 messages), each a commit round and 20-30 ms of
// apply.
const DefaultCopyUndoTimeout = 2 * time.Minute

// copyPieces copies the messages of src in ps to dst, one Copy entry a
// piece, so that no replica stalls on one long apply (pieces.go), and
// answers one COPYUID for all of them: the pieces ascend by source UID,
// and each gives its copies ascending destination UIDs.
//
// RFC 9051 §6.4.7 has a COPY that fails leave the destination as it
// was. When a piece fails (a quota it would exceed, the source or the
// destination deleted or replaced, the cluster unavailable), or the
// caller gives up between two pieces, the pieces already copied are
// expunged again (undoCopy) and the error is answered. Messages of the
// source expunged meanwhile are not a failure: a piece copies those of
// its UIDs it finds, as one entry would, and COPYUID names those copied.
//
// Each piece checks that it found the destination the first one did:
// one deleted and made again between two pieces (a new UIDVALIDITY)
// holds only the later pieces' copies, and an OK would tell the client
// that the folder now of that name holds every message. That COPY
// fails too, and its copies in the new folder are expunged; those in
// the deleted folder went with it.
func (n *Node) copyPieces(ctx context.Context, addr, src, dst string, ps [][]fsm.UIDRange, check *fsm.FolderCheck) (CopyResult, error) {
	to, err := n.Folder(ctx, addr, dst)
	if err != nil {
		return CopyResult{}, err
	}
	var done []fsm.CopyResult
	fail := func(cause error) (CopyResult, error) {
		n.undoCopy(ctx, addr, dst, to, done, cause)
		return CopyResult{}, cause
	}
	for i, rs := range ps {
		if err := ctx.Err(); err != nil {
			return fail(fmt.Errorf("%w: copy stopped after %d of %d pieces: %w", ErrUnavailable, i, len(ps), err))
		}
		res, err := n.copyPiece(ctx, &fsm.Copy{Mailbox: addr, From: src, To: dst, UIDs: rs, Expect: check})
		if err != nil {
			return fail(err)
		}
		done = append(done, res)
		// A repeat (after a leader change hid a commit) answers no
		// UIDVALIDITY below command encoding 14 (from 14 the first
		// commit's, fsm.MaxCopyRecordMessages at most), so it cannot
		// say which folder it copied to.
		if res.UIDValidity != 0 && res.UIDValidity != to.UIDValidity {
			return fail(fmt.Errorf("%w: folder %s was deleted and created again during the copy", ErrUnavailable, dst))
		}
	}
	out := CopyResult{UIDValidity: to.UIDValidity}
	for _, res := range done {
		if res.UIDValidity == 0 {
			// A repeat that kept no UIDs (below 14) cannot say which it
			// gave: a COPYUID would leave its messages out of the pairs
			// (RFC 4315 §3).
			return CopyResult{UIDValidity: to.UIDValidity}, nil
		}
		out.SrcUIDs, out.DstUIDs = append(out.SrcUIDs, res.Src...), append(out.DstUIDs, res.Dst...)
	}
	return out, nil
}

// copyPiece proposes one piece of a COPY. The caller's context is
// checked between pieces, not during one: a piece given up while
// proposed may still commit, and then its UIDs, which undoCopy needs,
// would be unknown. A piece is bounded as a delivery's commit is.
func (n *Node) copyPiece(ctx context.Context, cmd *fsm.Copy) (fsm.CopyResult, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitRetryWindow)
	defer cancel()
	return n.copyOnce(ctx, cmd)
}

// undoCopy expunges from the destination the copies that the pieces
// done made, by UID, for a COPY that failed with cause. It runs with a
// context of its own, bounded by Config.CopyUndoTimeout, since the
// caller's may be what ended the COPY, and in pieces as any expunge.
// Each piece's copies are expunged from the folder they went to, named
// by its ID and UIDVALIDITY: the destination as the COPY found it, also
// if renamed since, or the folder that replaced it; one deleted since
// took its copies with it. Another session may see the copies before
// they go (EXISTS, then EXPUNGE). A piece whose commit a leader change
// hid is undone as any other from command encoding 14, where its repeat
// answers the UIDs the commit gave. What cannot be undone is logged:
// the copies of such a piece below 14 (its repeat answers no UIDs) or
// past fsm.MaxCopyRecordMessages, and all of them if the cluster stays
// unavailable.
func (n *Node) undoCopy(ctx context.Context, addr, dst string, to Folder, done []fsm.CopyResult, cause error) {
	if len(done) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.CopyUndoTimeout)
	defer cancel()
	byFolder := map[uint32][]uint32{}
	unknown := 0
	for _, res := range done {
		if res.UIDValidity == 0 {
			unknown++
			continue
		}
		byFolder[res.UIDValidity] = append(byFolder[res.UIDValidity], res.Dst...)
	}
	var errs []error
	if unknown > 0 {
		errs = append(errs, fmt.Errorf("%d pieces were committed by a repeat after a leader change, which answers no UIDs (below command encoding 14, or past %d messages)", unknown, fsm.MaxCopyRecordMessages))
	}
	if len(byFolder) > 0 {
		errs = append(errs, n.expungeCopies(ctx, addr, dst, to, byFolder))
	}
	if err := errors.Join(errs...); err != nil {
		n.log.Error("copy failed part way and could not be undone: the destination keeps copies",
			"mailbox", addr, "folder", dst, "cause", cause, "err", err)
		return
	}
	n.log.Info("copy failed part way; its copies were expunged again", "mailbox", addr, "folder", dst, "pieces", len(done), "cause", cause)
}

// expungeCopies expunges the UIDs byFolder lists under each UIDVALIDITY
// from the folder of addr that has it (see undoCopy).
func (n *Node) expungeCopies(ctx context.Context, addr, dst string, to Folder, byFolder map[uint32][]uint32) error {
	if err := n.readBarrier(ctx); err != nil {
		return err
	}
	folders, err := n.state.Folders(addr)
	if err != nil {
		return accessErr(err)
	}
	var errs []error
	for validity, uids := range byFolder {
		f, ok := copiedTo(folders, dst, to, validity)
		if !ok {
			continue // deleted since, with its copies
		}
		_, err := n.Expunge(ctx, addr, f.Name, uids, false, FolderCheck{ID: f.ID, UIDValidity: f.UIDValidity})
		if err != nil && !errors.Is(err, ErrNoFolder) { // deleted since
			errs = append(errs, fmt.Errorf("expunge %d copies from %s: %w", len(uids), f.Name, err))
		}
	}
	return errors.Join(errs...)
}

// copiedTo finds among folders the one a COPY to dst, which found to
// there at first, copied to under validity: to itself (by ID, whatever
// its name now), or the folder now named dst if a later piece found it
// in to's place.
func copiedTo(folders []Folder, dst string, to Folder, validity uint32) (Folder, bool) {
	for _, f := range folders {
		if f.UIDValidity == validity && (f.ID == to.ID || f.Name == fsm.CanonicalFolder(dst)) {
			return f, true
		}
	}
	return Folder{}, false
}
