package node

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"powermail/fsm"
)

// checkEncodingRaise refuses to raise the cluster's command encoding to
// enc while a member's release cannot read it, or does not answer to say
// which it reads: such a member stops at the raise (a release stops on an
// encoding it does not know, fsm/DESIGN.md) and cannot take part again
// until it is upgraded. Raising the encoding is the last step of a
// rolling upgrade, and one node left on the old release is an easy
// mistake to make. An operator who means it (the node is gone for good)
// forces the raise.
func (n *Node) checkEncodingRaise(ctx context.Context, enc int) error {
	if enc <= n.commandEncoding() {
		return nil
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return fmt.Errorf("raise check: %w", err)
	}
	var (
		mu      sync.Mutex
		behind  []string
		readers int // members known to read enc
		wg      sync.WaitGroup
	)
	if enc > fsm.NewestEncoding {
		// Apply refuses, on every release, a raise past its own
		// (fsm raiseRefused); named here, it tells whether any member
		// could take the raise, forced or not.
		behind = append(behind, fmt.Sprintf("%s reads up to %d", n.cfg.ID, fsm.NewestEncoding))
	} else {
		readers++
	}
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == n.cfg.ID {
			continue
		}
		wg.Go(func() {
			ms, ok := n.probeMember(ctx, s.Address)
			var why string
			switch {
			case !ok:
				why = fmt.Sprintf("%s did not answer", s.ID)
			case ms.Reads < enc:
				why = fmt.Sprintf("%s reads up to %d", s.ID, ms.Reads)
			default:
				mu.Lock()
				readers++
				mu.Unlock()
				return
			}
			mu.Lock()
			behind = append(behind, why)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(behind) == 0 {
		return nil
	}
	slices.Sort(behind)
	if readers == 0 {
		// Forcing cannot help: no member runs a release that reads it,
		// and the leader's apply would refuse it.
		return &fsm.Error{Kind: fsm.ErrInvalid, Msg: fmt.Sprintf(
			"command encoding %d: no member reads it (%s); upgrade the nodes to a release that does first",
			enc, strings.Join(behind, ", "))}
	}
	return &fsm.Error{Kind: fsm.ErrInvalid, Msg: fmt.Sprintf(
		"command encoding %d: %s; a node that cannot read it stops at the raise. Upgrade those nodes (or remove them) first, or force the raise",
		enc, strings.Join(behind, ", "))}
}
