package node

import (
	"context"
	"fmt"

	"powermail/fsm"
)

// POP3UIDLs returns the POP3 unique-ids kept from a previous server for
// messages of the folder with ID folderID of addr whose UIDs fall in
// uids, by UID, as this node's
// state has them. A POP3 session reads them right after the View that
// numbered its maildrop (which waited for the read barrier), and a
// message's unique-id, once kept, never changes.
func (n *Node) POP3UIDLs(_ context.Context, addr string, folderID uint64, uids fsm.UIDRange) (map[uint32]string, error) {
	m, err := n.state.POP3UIDLs(addr, folderID, uids)
	return m, accessErr(err)
}

// keepsPOP3UIDLs reports whether the cluster's command encoding lets an
// append keep a POP3 unique-id (fsm.EncodingJSON17). Below it an older
// release would drop the field, so it is not sent.
func (n *Node) keepsPOP3UIDLs() (bool, error) {
	s, err := n.state.Settings()
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return s.CommandEncoding >= fsm.EncodingJSON17, nil
}

// setPOP3UIDLs gives INBOX messages of addr (of UIDVALIDITY validity) the
// unique-ids in uidls, by UID, in commands of at most
// fsm.MaxPOP3UIDLSet; a message that has one already keeps it. It
// returns how many were kept.
func (n *Node) setPOP3UIDLs(ctx context.Context, addr string, validity uint32, uidls map[uint32]string) (int, error) {
	set := 0
	batch := map[uint32]string{}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var res fsm.POP3UIDLSetResult
		if err := n.applyAccess(ctx, &fsm.POP3UIDLSet{Mailbox: addr, UIDValidity: validity, UIDLs: batch}, &res); err != nil {
			return err
		}
		set += res.Set
		batch = map[uint32]string{}
		return nil
	}
	for uid, uidl := range uidls {
		batch[uid] = uidl
		if len(batch) == fsm.MaxPOP3UIDLSet {
			if err := flush(); err != nil {
				return set, err
			}
		}
	}
	return set, flush()
}
