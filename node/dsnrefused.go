package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"powermail/fsm"
)

// Failure notices for mailboxes refused at commit, and for list members
// left out as full at RCPT. Resolve checks every RCPT, but the commit
// checks again and may refuse a mailbox that RCPT accepted: it was
// deleted, marked as being removed (command encoding 10) or its INBOX
// gave its last UID (encoding 11) in between. SMTP answers a
// transaction once, after the final dot, and a mailbox that took the
// message makes that answer 250 (a 4xx would have the others stored
// twice). As an MTA does when local delivery fails after it accepted a
// message, the refused RCPTs are then reported to the envelope sender
// in a failure DSN (RFC 3464), composed, signed and committed as the
// queue's are (dsn.go).
//
// A forward's member over its quota at RCPT is left out of the delivery
// (Resolution.Full) while the forward's other places take the message;
// the same notice names it, as Postfix does a member that Dovecot's
// LMTP refuses as full: Final-Recipient the member, Original-Recipient
// the RCPT's ORCPT (only when the client gave one, RFC 3461 §6.3(d)),
// status 5.2.2, and words naming the RCPT it was reached by. At most
// MaxFullNamed members are named in one notice, over every RCPT; one
// line of the human-readable part gives the number of the others, and
// the RCPT they were reached by when there is one such RCPT, the number
// of such RCPTs when there are more (a line per RCPT would grow with
// the RCPTs, each of which may be a list).
//
// LMTP answers each RCPT after the data (RFC 2033 §4.2), so a mailbox
// refused at commit is in its RCPT's reply and gets no notice; a full
// member has no reply of its own, and is named in the notice when its
// RCPT was answered 250 (DSNRequest.PerRecipient).
//
// Invariants:
//   - A notice is sent only when the commit kept the message somewhere
//     (a mailbox or the outbound queue), so the reply was 250; when
//     every mailbox refused, the reply carries the refusal instead. Over
//     LMTP, a full member only when its RCPT's reply was 250.
//   - Never to the null sender, nor about a RCPT whose NOTIFY does not
//     ask for failures (NEVER, or a list without FAILURE; no NOTIFY
//     asks, RFC 3461 §4.1).
//   - Each RCPT is named as the client gave it, with its ORCPT and the
//     ENVID echoed; a forward's mailboxes refused at commit are not
//     named. A member left out as full is named (the sender would learn
//     it from Postfix too); one that took the message through another
//     RCPT of the transaction is not.
//   - One notice per transaction (its delivery ID is derived from the
//     message's). Its full members are bounded by MaxFullNamed and one
//     line, however large and however many the lists.
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
// the commit of cmd refused and the members its RCPTs left out as full,
// res being that commit's outcome.
func (n *Node) notifyRefused(ctx context.Context, cmd *fsm.Deliver, msg Message, res DeliveryResult) {
	if msg.Notify == nil || msg.From == "" || len(res.Rejected) == 0 && !anyFull(msg.Notify.Failure) {
		return
	}
	rep := refusedReport(cmd, msg, res)
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

// anyFull reports whether a RCPT of rcpts left a member out as full.
func anyFull(rcpts []NotifyRcpt) bool {
	for _, r := range rcpts {
		if len(r.Full) > 0 || r.FullMore > 0 {
			return true
		}
	}
	return false
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

// rcptKept reports whether the commit stored the message in every
// mailbox of r and queued it for r's outside targets: LMTP then answers
// r 250 (frontend lmtpReply).
func rcptKept(r NotifyRcpt, res DeliveryResult) bool {
	for _, box := range r.Mailboxes {
		if res.Rejected[box] != nil {
			return false
		}
	}
	return r.External == 0 || res.Queued != ""
}

// refusedReport is the failure report on the RCPTs of msg that asked to
// be told of failures: those of whose mailboxes the commit of cmd (its
// outcome res) refused at least one (not over LMTP, whose reply says
// it), and the members they left out as full. Empty when the reply
// was no 250 (keptSomewhere, rcptKept).
func refusedReport(cmd *fsm.Deliver, msg Message, res DeliveryResult) dsnReport {
	rep := dsnReport{id: cmd.ID, from: msg.From, envID: msg.Notify.EnvID, hash: cmd.Hash, arrived: msg.Received, kind: dsnFailed}
	rep.returns(msg.Submitted, msg.Notify.Ret, cmd.Size)
	perRcpt := msg.Notify.PerRecipient
	if !perRcpt && !keptSomewhere(msg, res) {
		return rep
	}
	full := fullReport{stored: storedIn(msg, res), named: map[string]bool{}}
	for _, r := range msg.Notify.Failure {
		if !(fsm.QueueRecipient{Notify: r.Notify}).Wants(fsm.NotifyFailure) {
			continue
		}
		if perRcpt {
			if !rcptKept(r, res) {
				continue
			}
		} else if rr, ok := commitRefusal(r, res.Rejected); ok {
			rep.rcpts = append(rep.rcpts, rr)
		}
		full.add(&rep, r)
	}
	full.note(&rep)
	return rep
}

// commitRefusal is r's part of a report when the commit refused at
// least one of its mailboxes, with the status of the first.
func commitRefusal(r NotifyRcpt, rejected map[string]error) (dsnRcpt, bool) {
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
		return dsnRcpt{}, false
	}
	status, text := refusalStatus(first)
	if targets := len(r.Mailboxes) + r.External; targets > 1 {
		text = fmt.Sprintf("%s (%d of the %d mailboxes and addresses it leads to)", text, refused, targets)
	}
	return dsnRcpt{address: r.Address, orcpt: r.ORCPT, err: text, status: status}, true
}

// fullReport names, across a report's RCPTs, the members left out as
// full: each once, at most MaxFullNamed of them, and counts the others.
type fullReport struct {
	stored func(box string) bool // took the message (through another RCPT)
	named  map[string]bool       // named already (reached by another RCPT too)

	more     int    // members left unnamed, over every RCPT
	moreOf   int    // RCPTs with members left unnamed
	moreRcpt string // the first such RCPT
}

// add puts the members r left out as full into rep: each as a
// recipient that failed with 5.2.2 (RFC 3463 X.2.2, mailbox full),
// within the bound; the others are counted for note.
func (f *fullReport) add(rep *dsnReport, r NotifyRcpt) {
	more := r.FullMore
	for _, box := range r.Full {
		switch {
		case f.stored(box) || f.named[box]:
		case len(f.named) >= MaxFullNamed:
			more++
		default:
			f.named[box] = true
			rep.rcpts = append(rep.rcpts, dsnRcpt{address: box, orcpt: r.ORCPT, status: "5.2.2",
				err: fmt.Sprintf("mailbox full (over its quota): a member of <%s>, left out of the delivery", r.Address)})
		}
	}
	if more == 0 {
		return
	}
	if f.moreOf == 0 {
		f.moreRcpt = r.Address
	}
	f.more += more
	f.moreOf++
}

// note adds the one line on the members left unnamed to rep's
// human-readable part, if any were.
func (f *fullReport) note(rep *dsnReport) {
	switch {
	case f.moreOf == 1:
		rep.notes = append(rep.notes, fmt.Sprintf("and %d more members of <%s> whose mailboxes were full, not named here", f.more, f.moreRcpt))
	case f.moreOf > 1:
		rep.notes = append(rep.notes, fmt.Sprintf("and %d more members, of %d of the addresses the message was sent to, whose mailboxes were full, not named here", f.more, f.moreOf))
	}
}

// storedIn is whether a mailbox took msg in the commit whose outcome is
// res; the set is built at the first question.
func storedIn(msg Message, res DeliveryResult) func(string) bool {
	var stored map[string]bool
	return func(box string) bool {
		if stored == nil {
			stored = make(map[string]bool, len(msg.Mailboxes))
			for _, b := range msg.Mailboxes {
				if res.Rejected[b] == nil {
					stored[b] = true
				}
			}
		}
		return stored[box]
	}
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
