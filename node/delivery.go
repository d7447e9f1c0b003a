package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"time"

	"powermail/fsm"
)

// Delivery errors, returned (wrapped) by Resolve and Deliver. The frontend
// maps each to one SMTP reply; see frontend/DESIGN.md.
var (
	// ErrUnknownRecipient: no mailbox or forward for the address (550 5.1.1).
	ErrUnknownRecipient = errors.New("unknown recipient")
	// ErrNotLocal: the domain is not hosted here; relaying is refused (550 5.7.1).
	ErrNotLocal = errors.New("domain not hosted here")
	// ErrExternalTarget: the address forwards outside the cluster and the
	// outbound queue cannot take it (451 4.3.0). Resolve no longer returns
	// it; kept for Deliverers without a queue.
	ErrExternalTarget = errors.New("forward to an external address")
	// ErrOverQuota: the mailbox is full (452 4.2.2).
	ErrOverQuota = errors.New("mailbox over quota")
	// ErrFolderFull: the folder has given its last UID (fsm.ErrFolderFull,
	// from command encoding 11) and takes no new message, whatever is
	// expunged: UIDs are never given again (552 5.2.2; NO [LIMIT]).
	ErrFolderFull = errors.New("folder has used all its UIDs")
	// ErrUnavailable: no leader, no quorum, too few live replicas, or a
	// timeout; the sender should retry (451 4.3.0).
	ErrUnavailable = errors.New("temporarily unavailable")
	// ErrInsufficientStorage: this node's body store is down to its
	// free-space reserve (storage.ErrNoSpace), so it cannot keep its copy,
	// or too few peers had room for the write quorum's copies when last
	// polled (452 4.3.1). Errors that wrap it also wrap ErrUnavailable.
	ErrInsufficientStorage = errors.New("insufficient storage")
	// ErrMailboxRemoving: the mailbox is being removed (fsm.Mailbox.Removing,
	// pieces.go); mail for it is refused until the removal ends (then it
	// is unknown) or is undone (450 4.2.1). It wraps ErrUnavailable, so a
	// caller that does not know it still takes it as temporary.
	ErrMailboxRemoving = fmt.Errorf("%w: mailbox being removed", ErrUnavailable)
)

// Bounds on one Message. The state machine refuses a commit that names
// more mailboxes or external targets than this, however often it is
// retried, so a receiver keeps each transaction within them (the SMTP
// frontend refuses the RCPT that would cross one with 452 4.5.3).
const (
	MaxMessageMailboxes = fsm.MaxDeliverMailboxes
	MaxMessageExternal  = fsm.MaxQueueRecipients
)

// MaxUIDRanges bounds the runs of consecutive UIDs one StoreFlags or Copy
// may name; the node closes runs split only by UIDs no message has.
const MaxUIDRanges = fsm.MaxUIDRanges

// Message is one accepted message to commit.
type Message struct {
	From      string    // envelope sender ("" for the null sender)
	Mailboxes []string  // canonical local mailbox addresses (from Resolve)
	External  []string  // external recipients to queue (from Resolve)
	Received  time.Time // internal date
	// Notify, when set, asks for a success notice after the commit
	// (dsnsuccess.go), and a failure notice about mailboxes the commit
	// refuses while it keeps the message elsewhere (dsnrefused.go).
	Notify *DSNRequest
	// Submitted: an authenticated user submitted the message (RFC 6409);
	// only then is what it queues DKIM-signed and its sender kept
	// (fsm.QueuePart.Submitted).
	Submitted bool
}

// DeliveryResult reports the outcome per mailbox. A mailbox missing from
// Rejected was delivered.
type DeliveryResult struct {
	Rejected map[string]error
	// Queued is the outbound queue entry holding msg.External, committed
	// with the local deliveries ("" when there were none).
	Queued string
}

// Resolution is where mail for one RCPT address goes.
type Resolution struct {
	Mailboxes []string // canonical local mailboxes
	External  []string // addresses outside the cluster, reached by the outbound queue
	// Full are the forward's members over their quota, left out of
	// Mailboxes: the sender is told of them in a failure notice once
	// the others took the message (dsnrefused.go). At most
	// MaxFullNamed are named; FullMore counts the rest.
	Full     []string
	FullMore int
}

// MaxFullNamed bounds the full members one Resolution names, and one
// failure notice: a list of 10,000 full mailboxes gives a notice naming
// MaxFullNamed of them and the number of the others.
const MaxFullNamed = 50

// Resolve checks one RCPT address and returns the local mailboxes and
// external forward targets it expands to. It first reads the local state:
// an address found there existed at some committed index, and a mailbox
// deleted since is caught at commit, so a hit needs no round trip. A miss
// (or an over-quota mailbox) is confirmed after a read-index barrier, so
// an address created through any node a moment ago is found and nothing
// is refused on stale data. An SRS address of ours (srs.go) resolves to
// the original sender it encodes: that is how bounces of forwarded mail
// find their way back. A node removed from the cluster refuses every
// address (ErrUnavailable wrapping ErrRemoved): a hit there would be
// accepted on a state that never catches up, for a commit that fails.
func (n *Node) Resolve(ctx context.Context, rcpt string) (Resolution, error) {
	if err := n.removedNow(); err != nil {
		// Its state will never catch up, and the commit would fail:
		// refuse before the client sends the message.
		return Resolution{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if orig, ok, err := n.srsReverse(rcpt); ok || err != nil {
		if err != nil {
			return Resolution{}, fmt.Errorf("%w: %v", ErrUnknownRecipient, err)
		}
		return n.resolveBounce(ctx, orig)
	}
	exp := expansionsOf(ctx)
	if exp.exhausted() {
		return Resolution{}, ErrExpansionLimit
	}
	res, left, err := n.resolveGated(rcpt, resolveQuota|resolveRemoving, exp)
	if err == nil && !left || errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrMailboxRemoving) {
		return res, err
	}
	// A refusal, or a member left out as being removed or full, may rest
	// on a mark or a use this node has not yet seen cleared: confirmed
	// on fresh state.
	if berr := n.Barrier(ctx); berr != nil {
		return Resolution{}, fmt.Errorf("%w: %v", ErrUnavailable, berr)
	}
	res, _, err = n.resolveGated(rcpt, resolveQuota|resolveRemoving, exp.confirming())
	return res, err
}

// ResolveSender is Resolve without the quota gate, for asking where an
// address a user names as sender leads: whether a full mailbox is full
// says nothing of whose the address is.
func (n *Node) ResolveSender(ctx context.Context, addr string) (Resolution, error) {
	res, err := n.resolveLocal(addr, 0)
	if err == nil || errors.Is(err, ErrUnavailable) {
		return res, err
	}
	if berr := n.Barrier(ctx); berr != nil {
		return Resolution{}, fmt.Errorf("%w: %v", ErrUnavailable, berr)
	}
	return n.resolveLocal(addr, 0)
}

// resolveGates are the refusals resolveLocal makes beyond "unknown".
type resolveGates int

const (
	// resolveQuota refuses a mailbox over its quota.
	resolveQuota resolveGates = 1 << iota
	// resolveRemoving refuses a mailbox being removed
	// (ErrMailboxRemoving): Deliver would refuse it at commit.
	resolveRemoving
)

// resolveLocal reads where rcpt goes in the local state; with
// resolveQuota, a mailbox over its quota refuses (a bounce is delivered
// regardless: it is small, and refusing it would leave its queue entry
// waiting for ever); with resolveRemoving, a mailbox being removed
// refuses for as long as the removal runs (a bounce too: the commit
// would refuse it, and the queue tries it again).
//
// The address's own mailbox (fsm.Resolution.Own; a mailbox, or one
// kept beside a forward with keep_copy) refuses the address as before.
// A forward's members do not hold one another up: one being removed or
// over its quota would otherwise hold a list's mail for everyone (a list
// of thousands nearly always has a full mailbox in it). A member being
// removed is left out (its mail would go with it). A member over its
// quota is left out too, and named in Resolution.Full: once the message
// is stored for the others, the sender gets a failure notice naming it
// (5.2.2, dsnrefused.go), as Postfix with Dovecot's LMTP bounces a
// full member, so its quota bounds what list mail it holds. The quota
// is still read at RCPT only: a mailbox just under it takes a message
// that takes it past. An address none of whose places could take the
// message is refused as a single mailbox is. A member left out is
// confirmed after a read barrier, as a refusal is: the mark may have
// been cleared, or mail deleted, where this node lags.
func (n *Node) resolveLocal(rcpt string, gates resolveGates) (Resolution, error) {
	res, _, err := n.resolveGated(rcpt, gates, expansionUse{})
	return res, err
}

// resolveGated is resolveLocal, and reports whether it left a member
// being removed or over its quota out of the mailboxes. The lookup uses
// exp (expansions.go).
func (n *Node) resolveGated(rcpt string, gates resolveGates, exp expansionUse) (_ Resolution, left bool, err error) {
	res, err := n.state.ResolveIn(asciiAddress(rcpt), exp.lookupMemo(), exp.confirm)
	switch {
	case errors.Is(err, fsm.ErrInvalid) && n.remoteLongLocal(rcpt):
		return Resolution{}, false, fmt.Errorf("%w: %v", ErrNotLocal, err)
	case errors.Is(err, fsm.ErrNotFound), errors.Is(err, fsm.ErrInvalid), errors.Is(err, fsm.ErrForwardLoop):
		return Resolution{}, false, fmt.Errorf("%w: %v", ErrUnknownRecipient, err)
	case errors.Is(err, fsm.ErrNotLocal):
		return Resolution{}, false, fmt.Errorf("%w: %v", ErrNotLocal, err)
	case err != nil:
		return Resolution{}, false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	out := Resolution{Mailboxes: res.Mailboxes, External: res.External}
	if gates&resolveRemoving != 0 && len(res.Removing) > 0 {
		out.Mailboxes, left = leaveOut(out.Mailboxes, res.Removing), true
		if slices.Contains(res.Removing, res.Own) || len(out.Mailboxes)+len(out.External) == 0 {
			return Resolution{}, false, fmt.Errorf("%w: %s", ErrMailboxRemoving, refusing(res.Own, res.Removing))
		}
	}
	if gates&resolveQuota != 0 && len(res.OverQuota) > 0 {
		kept := leaveOut(out.Mailboxes, res.OverQuota)
		if slices.Contains(res.OverQuota, res.Own) || len(kept)+len(out.External) == 0 {
			return Resolution{}, false, fmt.Errorf("%w: %s", ErrOverQuota, refusing(res.Own, res.OverQuota))
		}
		out.Full, out.FullMore = leftFull(out.Mailboxes, kept)
		out.Mailboxes, left = kept, left || len(kept) < len(out.Mailboxes)
	}
	return out, left, nil
}

// leftFull is the members of boxes missing from kept (all of them when
// kept is empty), the first MaxFullNamed of them named and the rest
// counted.
func leftFull(boxes, kept []string) (named []string, more int) {
	dropped := leaveOut(boxes, kept)
	if len(dropped) > MaxFullNamed {
		return slices.Clone(dropped[:MaxFullNamed]), len(dropped) - MaxFullNamed
	}
	return dropped, 0
}

// refusing names the mailbox of boxes that refuses an address: its own
// when that is among them, else the first.
func refusing(own string, boxes []string) string {
	if slices.Contains(boxes, own) {
		return own
	}
	return boxes[0]
}

// leaveOut is boxes without those in drop, in their order.
func leaveOut(boxes, drop []string) []string {
	if len(drop) == 0 {
		return boxes
	}
	gone := make(map[string]bool, len(drop))
	for _, d := range drop {
		gone[d] = true
	}
	var out []string
	for _, b := range boxes {
		if !gone[b] {
			out = append(out, b)
		}
	}
	return out
}

// Deliver stores the body on this node and, at the same time, on R-1
// peers, then commits one raft entry that names the body and every
// mailbox. It returns only when at least W replicas have fsynced and
// verified the body and the entry is committed (Promise 1).
func (n *Node) Deliver(ctx context.Context, msg Message, body io.Reader) (DeliveryResult, error) {
	settings, err := n.state.Settings()
	if err != nil {
		return DeliveryResult{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if err := n.removedNow(); err != nil {
		// The commit would fail: store no body (on the former peers
		// too) for it.
		return DeliveryResult{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	start := time.Now()
	h, size, replicas, err := n.replicate(ctx, settings, body)
	if err != nil {
		return DeliveryResult{}, err
	}
	n.metrics.bodyWrite.Observe(time.Since(start).Seconds())
	cmd := &fsm.Deliver{ID: deliveryID(), Hash: h.String(), Size: size, Replicas: replicas, Mailboxes: msg.Mailboxes, InternalDate: msg.Received.UnixMilli()}
	if len(msg.External) > 0 {
		cmd.Queue = &fsm.QueuePart{From: msg.From, Recipients: msg.External, NextAttempt: time.Now().UnixMilli()}
		if settings.CommandEncoding >= fsm.EncodingJSON3 { // else no DSN parameters and no signing (QUEUE.md)
			cmd.Queue.DSN = msg.Notify.queueDSN()
			cmd.Queue.Submitted = msg.Submitted
		}
	}
	v, _, err := n.commitDelivery(ctx, cmd)
	if err != nil {
		return DeliveryResult{}, fmt.Errorf("%w: commit: %v", ErrUnavailable, err)
	}
	var res fsm.DeliverResult
	if err := convert(v, &res); err != nil {
		return DeliveryResult{}, err
	}
	n.metrics.delivered.Add(float64(len(res.UIDs)))
	out := DeliveryResult{Queued: res.Queued}
	if res.Queued != "" {
		n.queue.kick()
	}
	for addr, code := range res.Rejected {
		if out.Rejected == nil {
			out.Rejected = map[string]error{}
		}
		out.Rejected[addr] = rejection(code, res.Messages[addr])
	}
	n.notifySuccess(cmd.ID, cmd.Hash, msg, out.Rejected)
	n.notifyRefused(ctx, cmd, msg, out)
	return out, nil
}

// commitRetryWindow bounds how long a delivery keeps retrying a commit
// whose outcome it could not learn.
const commitRetryWindow = 30 * time.Second

// commitDelivery proposes cmd until its outcome is known. A commit can be
// cut off after the leader received it (the leader died, the connection
// dropped); answering 451 then would make the sender retry a message that
// may be stored. Instead the same command, with the same delivery ID, is
// proposed again: the state machine applies an ID once and answers a
// repeat with the first result.
//
// It also returns the raft index of the entry that answered, so a caller
// that must see its own write waits for that index to apply here.
func (n *Node) commitDelivery(ctx context.Context, cmd *fsm.Deliver) (any, uint64, error) {
	var v any
	var index uint64
	err := n.untilKnown(ctx, "delivery commit", cmd.ID, func(ctx context.Context) (err error) {
		v, index, err = n.propose(ctx, cmd)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return v, index, nil
}

// untilKnown runs try, a commit, again while its outcome is unknown (no
// answer, leadership changed), for up to commitRetryWindow. The state
// machine decides the outcome: an error it returned (fsm.Code), or the
// node closing, ends the loop at once. Only for commands whose second
// application leaves what the first did: a delivery or a copy (by its
// ID), a queue attempt's record (which looks first whether it took).
func (n *Node) untilKnown(ctx context.Context, what, id string, try func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, commitRetryWindow)
	defer cancel()
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		err := try(ctx)
		if err == nil || fsm.Code(err) != "" || errors.Is(err, ErrClosed) || errors.Is(err, ErrRemoved) {
			// A removed node can never learn the outcome: retrying
			// would only hold the client for the window.
			return err
		}
		n.log.Warn(what+" outcome unknown; retrying", "id", id, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
	}
}

func deliveryID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func rejection(code, msg string) error {
	switch code {
	case "not_found":
		return fmt.Errorf("%w: %s", ErrUnknownRecipient, msg)
	case "being_removed":
		return fmt.Errorf("%w: %s", ErrMailboxRemoving, msg)
	case "folder_full":
		return fmt.Errorf("%w: %s", ErrFolderFull, msg)
	}
	return fmt.Errorf("%w: %s", ErrUnavailable, msg)
}

// convert turns an Apply value into out: a local apply returns the typed
// value, which is assigned as it is; a forwarded one its JSON form.
func convert(v, out any) error {
	if dst := reflect.ValueOf(out); dst.Kind() == reflect.Pointer && !dst.IsNil() && v != nil && reflect.TypeOf(v) == dst.Type().Elem() {
		dst.Elem().Set(reflect.ValueOf(v))
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}
