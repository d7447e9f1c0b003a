package node

import (
	"context"
	"errors"
	"fmt"

	"powermail/fsm"
)

// SendAsAlias reports whether mailbox may send as addr because addr is
// one of its aliases: an address with a forward of its own (never a
// catch-all, never an address that is a mailbox) that names mailbox
// among its targets itself, or a +detail of such an address that has
// no entry of its own or a forward naming mailbox too
// (fsm.State.SenderForwards). A sub-address of
// someone else's address is not: when addr's base is a mailbox, or a
// forward that does not name mailbox, addr is in that owner's name
// space, whatever forward of its own it has. A target that reaches
// mailbox only through another forward does not count: that forward's
// targets may change without addr's changing (it may be a list, or
// someone else's alias), and a chain would grant addr to whoever its
// last link then names. Local parts are compared with only ASCII
// letters folded, as OwnAddress does.
//
// It reads the local state; only a refusal is read again after a
// read-index barrier, so an alias made a moment ago through another
// node is found. Errors wrap ErrUnavailable.
func (n *Node) SendAsAlias(ctx context.Context, mailbox, addr string) (bool, error) {
	ok, err := n.sendAsAlias(mailbox, addr)
	if ok || err != nil {
		return ok, err
	}
	if berr := n.Barrier(ctx); berr != nil {
		return false, fmt.Errorf("%w: %v", ErrUnavailable, berr)
	}
	return n.sendAsAlias(mailbox, addr)
}

func (n *Node) sendAsAlias(mailbox, addr string) (bool, error) {
	addr = asciiAddress(addr)
	fws, err := n.state.SenderForwards(addr)
	switch {
	case errors.Is(err, fsm.ErrNotFound), errors.Is(err, fsm.ErrInvalid):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	want, err := fsm.ParseAddress(asciiAddress(mailbox))
	if err != nil || len(fws) == 0 { // none grants nothing, whatever the state says
		return false, nil
	}
	for _, fw := range fws {
		// OwnAddress: not a lookalike only Unicode case folding equates.
		if !OwnAddress(addr, fw.Address) || !namesMailbox(fw, want.Key()) {
			return false, nil
		}
	}
	return true, nil
}

// namesMailbox reports whether one of fw's targets is the mailbox
// whose key is want itself.
func namesMailbox(fw fsm.Forward, want string) bool {
	for _, t := range fw.Targets {
		if ta, err := fsm.ParseAddress(t); err == nil && ta.Key() == want {
			return true
		}
	}
	return false
}
