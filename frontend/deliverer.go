package frontend

import (
	"context"
	"io"

	"powermail/node"
)

// Deliverer is the narrow view of the cluster that mail delivery needs.
// *node.Node implements it; the frontend never sees raft, fsm or storage
// types. The assertion that *node.Node satisfies it must live outside both
// packages (cmd, or an external test package), because frontend imports
// node for the sentinels.
type Deliverer interface {
	// Resolve checks one RCPT address against the replicated directory and
	// returns the canonical local mailbox addresses it expands to (forwards
	// expanded) and the external forward targets, which Deliver queues.
	// Errors wrap node.ErrUnknownRecipient, node.ErrNotLocal (never a
	// relay), node.ErrExternalTarget, node.ErrOverQuota,
	// node.ErrMailboxRemoving (which wraps node.ErrUnavailable) or
	// node.ErrUnavailable.
	Resolve(ctx context.Context, rcpt string) (node.Resolution, error)

	// Deliver streams the body to R replicas and commits it, once, to every
	// mailbox in msg.Mailboxes, and in the same commit queues it for
	// msg.External (res.Queued names the queue entry). It returns only when durable. A mailbox in
	// res.Rejected was not delivered (its error wraps node.ErrOverQuota,
	// ...). A non-nil error means nothing was delivered (wraps
	// node.ErrUnavailable, or anything else = unexpected).
	//
	// Deliver must read body to io.EOF before it reports success, must
	// fail if reading body fails, and must not touch body after it
	// returns. The frontend replies 250 only when all three held.
	Deliver(ctx context.Context, msg node.Message, body io.Reader) (node.DeliveryResult, error)

	// SendAsAlias reports whether the mailbox may send as addr because
	// addr is one of its aliases: a forward (not a catch-all, not a
	// mailbox's) whose targets name the mailbox itself, or a +detail of
	// one. The submission listener asks it for a sender that is not the
	// mailbox's own address (submission.go). Errors wrap
	// node.ErrUnavailable.
	SendAsAlias(ctx context.Context, mailbox, addr string) (bool, error)
}

// SpaceChecker is implemented by a Deliverer that can tell at MAIL time
// that it has no room for a message (*node.Node does). CheckSpace gets
// the size the client declared with SIZE= (0 if none) and returns an
// error wrapping node.ErrInsufficientStorage when the message cannot be
// stored now for want of space, or one wrapping node.ErrUnavailable
// alone when no message can be stored now for another reason (the
// node's body store failed).
type SpaceChecker interface {
	CheckSpace(size int64) error
}
