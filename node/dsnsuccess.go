package node

import (
	"context"
	"slices"
	"time"
)

// Success notices (RFC 3461 NOTIFY=SUCCESS). A client may ask, per
// recipient, to be told when its message is delivered; Outlook's
// "delivery receipt" is this. After the commit that delivers the
// message, the receiving node sends a "delivered" DSN (RFC 3464) about
// each recipient that asked and reached a mailbox: "delivered" for an
// address that is one mailbox, "expanded" for one that a forward spread
// over several targets (RFC 3461 §6.2.7.3).
//
// Invariants:
//   - A notice is sent only after the delivery is committed, never for a
//     recipient whose every mailbox the commit refused, and never to the
//     null sender.
//   - The DSN is sent in the background, so the client's 250 does not
//     wait for it, and it is best effort: a node that crashes between the
//     commit and the DSN's own commit loses the notice, not the mail.
//     The DSN's delivery ID is derived from the message's, so it is
//     stored once whatever retries it takes.

// DSNRequest is what the client of a transaction asked of delivery status
// notifications (RFC 3461): its envelope ID and the recipients that asked
// to be told of success.
type DSNRequest struct {
	EnvID   string
	Success []NotifyRcpt
}

// NotifyRcpt is one RCPT that asked for NOTIFY=SUCCESS, with where it
// resolved (Resolve).
type NotifyRcpt struct {
	Address   string   // as the client sent it
	ORCPT     string   // ORCPT as "address-type; address", "" if none was given
	Mailboxes []string // its local mailboxes
	External  int      // its external forward targets
}

// successTimeout bounds one success notice's delivery.
const successTimeout = time.Minute

// notifySuccess sends, in the background, the success notice msg asked
// for about the committed delivery id of body hash.
func (n *Node) notifySuccess(id, hash string, msg Message, rejected map[string]error) {
	if msg.Notify == nil || msg.From == "" {
		return
	}
	rep := dsnReport{id: id, from: msg.From, envID: msg.Notify.EnvID, hash: hash, arrived: msg.Received, kind: dsnDelivered}
	for _, r := range msg.Notify.Success {
		delivered := slices.DeleteFunc(slices.Clone(r.Mailboxes), func(box string) bool { return rejected[box] != nil })
		if len(delivered) == 0 {
			continue // refused, or only forwarded out: the queue does not report success yet
		}
		action := "delivered"
		if len(r.Mailboxes)+r.External > 1 {
			action = "expanded"
		}
		rep.rcpts = append(rep.rcpts, dsnRcpt{address: r.Address, orcpt: r.ORCPT, action: action})
	}
	if len(rep.rcpts) == 0 {
		return
	}
	n.spawn(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, successTimeout)
		defer cancel()
		if err := n.sendDSN(ctx, rep, time.Now()); err != nil {
			n.log.Warn("success notice not sent", "id", id, "sender", msg.From, "err", err)
		}
	})
}
