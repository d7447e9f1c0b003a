package fsm

import "math"

// lastUID is the greatest UID a folder gives: UIDs are 32-bit and
// strictly ascending (RFC 9051 §2.3.1.1), and UIDNEXT, a nz-number no
// greater than 2^32-1 either, must stay above every UID given.
const lastUID = math.MaxUint32 - 1

// checkUIDRoom refuses, from the gated encoding on, n new messages in
// folder f when they would need a UID past lastUID. Below it UIDNEXT
// wraps past 2^32-1 as it always did (fsm/DESIGN.md, Not yet), so that
// entries of a cluster not yet raised apply as every release applies
// them. A UIDNEXT of 0 can only be such a wrap. Renumbering the folder
// under a new UIDVALIDITY would let it go on, but rewrites every
// message key of the folder in one entry; a folder that full is refused
// instead, and mail for it is answered as to a full mailbox.
func checkUIDRoom(tx *txn, a Address, f Folder, n int) error {
	on, err := gated(tx)
	if err != nil || !on {
		return err
	}
	if f.UIDNext == 0 || uint64(f.UIDNext)+uint64(n)-1 > lastUID {
		return errorf(ErrFolderFull, "mailbox %s: folder %s has given its last UID (UIDNEXT %d, %d more needed)", a, f.Name, f.UIDNext, n)
	}
	return nil
}
