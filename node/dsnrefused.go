package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"powermail/fsm"
)

// Failure notices for mailboxes refused at commit. Resolve checks every
// RCPT, but the commit checks again and may refuse a mailbox that
// RCPT accepted: it was deleted, marked as being removed (command
// encoding 10) or its INBOX gave its last UID (encoding 11) in between.
// SMTP answers a transaction once, after the final dot, and a mailbox
// that took the message makes that answer 250 (a 4xx would have the
// others stored twice). As an MTA does when local delivery fails after
// it accepted a message, the refused RCPTs are then reported to the
// envelope sender in a failure DSN (RFC 3464), composed, signed and
// committed as the queue's are (dsn.go). LMTP reports each RCPT in its
// reply and asks for no notice (DSNRequest.Failure is empty).
//
// Invariants:
//   - A notice is sent only when the commit kept the message somewhere
//     (a mailbox or the outbound queue), so the reply was 250; when
//     every mailbox refused, the reply carries the refusal instead.
//   - Never to the null sender, nor about a RCPT whose NOTIFY does not
//     ask for failures (NEVER, or a list without FAILURE; no NOTIFY
//     asks, RFC 3461 §4.1).
//   - Each RCPT is named as the client gave it, with its ORCPT and the
//     ENVID echoed; a forward's mailboxes are not named.
//   - Deliver sends the notice before it returns, so the client's 250
//     waits for its commit: a node lost in between gives no 250 and the
//     client sends again (the retry's RCPT meets the refusal). A notice
//     that cannot be committed within Config.RefusedNoticeTimeout is
//     logged as an error naming the sender and the RCPTs, and dropped;
//     the reply is 250 all the same. The message is committed for the
//     other mailboxes (or queued), so a 4xx would have the client send
//     it again: a duplicate for each of them, to spare the sender a
//     notice. Nothing keeps the notice to send later.

// DefaultRefusedNoticeTimeout is Config.RefusedNoticeTimeout's default:
// the wait for a commit through a leader change, as a delivery's own
// (commitRetryWindow).
const DefaultRefusedNoticeTimeout = 30 * time.Second

// MaxRefusedNoticeTimeout bounds Config.RefusedNoticeTimeout: the client
// waits for the reply after the final dot at least ten minutes (RFC 5321
// §4.5.3.2.6), and the message's own commit comes first. A client that
// gives up before the 250 sends the message again, a duplicate.
const MaxRefusedNoticeTimeout = 5 * time.Minute

// notifyRefused sends the failure notice about the mailboxes of msg that
// the commit of delivery id refused, res being that commit's outcome.
func (n *Node) notifyRefused(ctx context.Context, cmd *fsm.Deliver, msg Message, res DeliveryResult) {
	if msg.Notify == nil || msg.From == "" || len(res.Rejected) == 0 || !keptSomewhere(msg, res) {
		return
	}
	rep := refusedReport(cmd, msg, res.Rejected)
	if len(rep.rcpts) == 0 {
		return
	}
	// The message is committed: a client that hangs up now must not
	// cost the notice.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.RefusedNoticeTimeout)
	defer cancel()
	if err := n.sendDSN(ctx, rep, time.Now()); err != nil {
		names := make([]string, len(rep.rcpts))
		for i, r := range rep.rcpts {
			names[i] = r.address
		}
		n.log.Error("failure notice for mailboxes refused at commit not sent; the sender is not told",
			"id", cmd.ID, "sender", msg.From, "recipients", names, "err", err)
	}
}

// keptSomewhere reports whether the commit stored msg in a mailbox or
// queued it: the frontend then answers 250 (frontend/DESIGN.md).
func keptSomewhere(msg Message, res DeliveryResult) bool {
	if res.Queued != "" {
		return true
	}
	for _, box := range msg.Mailboxes {
		if res.Rejected[box] == nil {
			return true
		}
	}
	return false
}

// refusedReport is the failure report on the RCPTs of msg that asked to
// be told of failures and of whose mailboxes the commit of cmd refused
// at least one.
func refusedReport(cmd *fsm.Deliver, msg Message, rejected map[string]error) dsnReport {
	rep := dsnReport{id: cmd.ID, from: msg.From, envID: msg.Notify.EnvID, hash: cmd.Hash, arrived: msg.Received, kind: dsnFailed}
	rep.returns(msg.Submitted, msg.Notify.Ret, cmd.Size)
	for _, r := range msg.Notify.Failure {
		if !(fsm.QueueRecipient{Notify: r.Notify}).Wants(fsm.NotifyFailure) {
			continue
		}
		var first error
		refused := 0
		for _, box := range r.Mailboxes {
			if err := rejected[box]; err != nil {
				if first == nil {
					first = err
				}
				refused++
			}
		}
		if refused == 0 {
			continue
		}
		status, text := refusalStatus(first)
		if targets := len(r.Mailboxes) + r.External; targets > 1 {
			text = fmt.Sprintf("%s (%d of the %d mailboxes and addresses it leads to)", text, refused, targets)
		}
		rep.rcpts = append(rep.rcpts, dsnRcpt{address: r.Address, orcpt: r.ORCPT, err: text, status: status})
	}
	return rep
}

// refusalStatus is the RFC 3463 status and our words for a mailbox the
// commit refused. Each is a permanent failure, since the message was
// accepted and will not be tried again; a mailbox being removed, which
// RCPT answers 450 4.2.1, becomes 5.2.1 (mailbox disabled) here. The
// words name no mailbox: a forward's targets are not the sender's to
// learn.
func refusalStatus(err error) (status, text string) {
	switch {
	case errors.Is(err, ErrUnknownRecipient):
		return "5.1.1", "mailbox removed after the message was accepted for it"
	case errors.Is(err, ErrMailboxRemoving):
		return "5.2.1", "mailbox being removed; it took no mail when the message was stored"
	case errors.Is(err, ErrFolderFull):
		return "5.2.2", "mailbox full: its inbox has used all its message numbers (UIDs)"
	default:
		return "5.0.0", "mailbox refused the message when it was stored"
	}
}
