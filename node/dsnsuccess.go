package node

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"powermail/fsm"
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
//     commit and the DSN's own commit loses the notice, not the mail, and
//     past maxSuccessNotices in flight a notice is dropped and counted
//     (powermail_success_notices_dropped_total). The DSN's delivery ID
//     is derived from the message's, so it is stored once whatever
//     retries it takes.

// DSNRequest is what the client of a transaction asked of delivery status
// notifications (RFC 3461): its envelope ID and the recipients that asked
// to be told of success.
type DSNRequest struct {
	EnvID   string
	Ret     string // RET: FULL or HDRS, "" if not given
	Success []NotifyRcpt
	// Failure is, when the receiver answers the transaction once (SMTP,
	// not LMTP), every RCPT that reached a local mailbox or left a full
	// one out, whatever its NOTIFY: a mailbox that the commit refuses
	// while others take the message, and a member left out as full at
	// RCPT, are reported to the sender by a failure notice to those
	// whose NOTIFY asks (dsnrefused.go). With PerRecipient (LMTP), it is
	// the RCPTs that left a full member out, and only those are reported.
	Failure []NotifyRcpt
	// PerRecipient: the receiver answers each RCPT after the data
	// (LMTP, RFC 2033 §4.2), so a refusal at commit is in that RCPT's
	// reply, and a full member is reported only when its RCPT's reply is
	// 250 (every mailbox of it stored, its outside targets queued).
	PerRecipient bool
	// Forwarded is, for each of Message.External in order, the NOTIFY
	// (NEVER or a comma list of SUCCESS, FAILURE and DELAY; "" for none)
	// and ORCPT the queue keeps and passes on (QUEUE.md).
	Forwarded []ForwardDSN
}

// ForwardDSN is the DSN parameters of one external target.
type ForwardDSN struct{ Notify, ORCPT string }

// queueDSN is the queue part's copy of r, nil when r asks nothing of the
// queue.
func (r *DSNRequest) queueDSN() *fsm.QueueDSN {
	if r == nil || (r.EnvID == "" && r.Ret == "" && len(r.Forwarded) == 0) {
		return nil
	}
	d := &fsm.QueueDSN{EnvID: r.EnvID, Ret: r.Ret}
	for _, f := range r.Forwarded {
		d.Notify, d.ORCPT = append(d.Notify, f.Notify), append(d.ORCPT, f.ORCPT)
	}
	return d
}

// NotifyRcpt is one RCPT of a DSNRequest, with where it resolved
// (Resolve).
type NotifyRcpt struct {
	Address   string   // as the client sent it (<postmaster> as the frontend's Postmaster)
	ORCPT     string   // ORCPT as "address-type; address", "" if none was given
	Notify    string   // NOTIFY as a comma list (RFC 3461 §4.1), "" if none was given
	Mailboxes []string // its local mailboxes
	External  int      // its external forward targets
	Full      []string // members left out as full (Resolution.Full)
	FullMore  int      // the others left out as full (Resolution.FullMore)
}

// successTimeout bounds one success notice's delivery, and
// maxSuccessNotices the notices in flight on a node: each is a delivery
// of its own, and a sender can ask for one with every message, so past
// the bound a notice is dropped (and counted) rather than queued.
const (
	successTimeout    = time.Minute
	maxSuccessNotices = 64
)

// notifySuccess sends, in the background, the success notice msg asked
// for about the committed delivery id of body hash.
func (n *Node) notifySuccess(id, hash string, msg Message, rejected map[string]error) {
	if msg.Notify == nil || msg.From == "" {
		return
	}
	rep := successReport(id, hash, msg, rejected)
	if len(rep.rcpts) == 0 {
		return
	}
	select {
	case n.notices <- struct{}{}:
	default:
		n.metrics.noticesDropped.Inc()
		if k := n.noticeDrops.Add(1); k&(k-1) == 0 { // the 1st, 2nd, 4th...: an abuser cannot flood the log
			n.log.Warn("success notices dropped: too many in flight", "dropped", k, "last_id", id, "last_sender", msg.From, "in_flight", cap(n.notices))
		}
		return
	}
	n.spawn(func(ctx context.Context) {
		defer func() { <-n.notices }()
		ctx, cancel := context.WithTimeout(ctx, successTimeout)
		defer cancel()
		if err := n.sendDSN(ctx, rep, time.Now()); err != nil {
			n.log.Warn("success notice not sent", "id", id, "sender", msg.From, "err", err)
		}
	})
}

// successReport is the "delivered"/"expanded" report on the recipients
// of msg that asked for one and reached a target.
func successReport(id, hash string, msg Message, rejected map[string]error) dsnReport {
	rep := dsnReport{id: id, from: msg.From, envID: msg.Notify.EnvID, hash: hash, arrived: msg.Received, kind: dsnDelivered}
	rep.returns(msg.Submitted, msg.Notify.Ret, 0)
	for _, r := range msg.Notify.Success {
		delivered := slices.DeleteFunc(slices.Clone(r.Mailboxes), func(box string) bool { return rejected[box] != nil })
		var action string
		// A member left out as full was a target all the same: the
		// address expanded, and the failure notice names that member.
		switch targets := len(r.Mailboxes) + r.External + len(r.Full) + r.FullMore; {
		case targets > 1 && (len(delivered) > 0 || r.External > 0):
			action = "expanded" // its targets do not pass SUCCESS on
		case targets == 1 && len(delivered) == 1:
			action = "delivered"
		default:
			continue // refused, or one forward out: the queue reports it
		}
		rep.rcpts = append(rep.rcpts, dsnRcpt{address: r.Address, orcpt: r.ORCPT, action: action})
	}
	return rep
}

// noDSNNote ends the outcome of a recipient handed to a server that does
// not offer DSN: NOTIFY=SUCCESS then gets a "relayed" notice from us
// (RFC 3461 §6.2.6.2), since nobody further on will send one.
const noDSNNote = "; it does not offer DSN"

// rcptDSN is the RCPT parameters that pass e's DSN request for rcpt on.
func rcptDSN(e fsm.QueueEntry, rcpt string) *smtp.RcptOptions {
	i := slices.IndexFunc(e.Recipients, func(r fsm.QueueRecipient) bool { return r.Address == rcpt })
	if i < 0 || (e.Recipients[i].Notify == "" && e.Recipients[i].ORCPT == "") {
		return nil
	}
	r := e.Recipients[i]
	opts := &smtp.RcptOptions{}
	for _, k := range strings.Split(r.Notify, ",") {
		if k != "" {
			opts.Notify = append(opts.Notify, smtp.DSNNotify(k))
		}
	}
	typ, addr, _ := strings.Cut(r.ORCPT, ";")
	typ, addr = strings.ToUpper(strings.TrimSpace(typ)), strings.TrimSpace(addr)
	switch {
	case addr == "":
	case typ == string(smtp.DSNAddressTypeRFC822) && isPrintableASCII(addr):
		opts.OriginalRecipientType, opts.OriginalRecipient = smtp.DSNAddressTypeRFC822, addr
	case typ == string(smtp.DSNAddressTypeUTF8):
		opts.OriginalRecipientType, opts.OriginalRecipient = smtp.DSNAddressTypeUTF8, addr
	}
	return opts
}

func isPrintableASCII(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e })
}

// notifyRelayed sends a "relayed" notice about the recipients of e that
// outcomes handed to a server without DSN, and that asked for success.
func (n *Node) notifyRelayed(ctx context.Context, e fsm.QueueEntry, outcomes []fsm.RcptOutcome) {
	var relayed []fsm.QueueRecipient
	for _, o := range outcomes {
		if o.Outcome != fsm.OutcomeSent || !strings.HasSuffix(o.Error, noDSNNote) {
			continue
		}
		if i := slices.IndexFunc(e.Recipients, func(r fsm.QueueRecipient) bool { return r.Address == o.Address }); i >= 0 {
			relayed = append(relayed, e.Recipients[i])
		}
	}
	rep := queueReport(e, relayed, dsnRelayed, fsm.NotifySuccess)
	var names []string
	for _, r := range rep.rcpts {
		names = append(names, r.address)
	}
	rep.id = reportID(e.ID, names)
	for i := range rep.rcpts {
		rep.rcpts[i].err = ""
	}
	if err := n.sendDSN(ctx, rep, time.Now()); err != nil {
		n.log.Warn("relayed notice not sent", "id", e.ID, "err", err)
	}
}
