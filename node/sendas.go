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
// among its targets itself, or a +detail of such an address that has no
// entry of its own (fsm.State.SenderAlias). A target that reaches
// mailbox only through another forward does not count: that forward's
// owner may change its targets, and a chain would then grant an address
// to whoever the last link names, without the first one's
// administrator seeing it. Local parts are compared with only ASCII
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
	fw, err := n.state.SenderAlias(addr)
	switch {
	case errors.Is(err, fsm.ErrNotFound), errors.Is(err, fsm.ErrInvalid):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	case !OwnAddress(addr, fw.Address):
		return false, nil // a lookalike only Unicode case folding equates
	}
	want, err := fsm.ParseAddress(asciiAddress(mailbox))
	if err != nil {
		return false, nil
	}
	for _, t := range fw.Targets {
		if ta, err := fsm.ParseAddress(t); err == nil && ta.Key() == want.Key() {
			return true, nil
		}
	}
	return false, nil
}
