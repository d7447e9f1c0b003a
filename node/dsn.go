package node

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"powermail/fsm"
)

// Delivery status notifications (RFC 3464) for the outbound queue: a
// multipart/report (RFC 6522) with a human part, a message/delivery-status
// part, and the original header section (text/rfc822-headers). A DSN has
// the null sender (RFC 5321 §4.5.5), so it is never bounced itself.

type dsnKind string

const (
	dsnFailed    dsnKind = "failed"
	dsnDelayed   dsnKind = "delayed"
	dsnDelivered dsnKind = "delivered" // RFC 3461 NOTIFY=SUCCESS (dsnsuccess.go)
	dsnRelayed   dsnKind = "relayed"   // handed to a server that does not offer DSN
)

// maxDSNHeader caps the original header section quoted in a DSN, and
// maxDSNFull the original message a failure DSN returns whole for RET=FULL
// (RFC 3461 §4.3); a larger one is returned as its header section.
const (
	maxDSNHeader = 64 << 10
	maxDSNFull   = 1 << 20
)

// maxDSNLine is the longest line a DSN field may have (RFC 5322 §2.1.1).
const maxDSNLine = 998

var enhancedCode = regexp.MustCompile(`\b([245])\.(\d{1,3})\.(\d{1,3})\b`)

// dsnReport is what one DSN reports: on which message, to whom, and about
// which recipients.
type dsnReport struct {
	id      string // the reported delivery or queue entry; names the DSN
	from    string // the original envelope sender, who gets the DSN
	envID   string // ENVID of the original transaction, echoed (RFC 3461 §4.4)
	hash    string // the original body, for its header section
	arrived time.Time
	kind    dsnKind
	full    bool // return the whole original (RET=FULL), size allowing
	// bare: return nothing of the original. A success notice a stranger
	// asked for goes to whatever sender the stranger named, so it must
	// not carry the stranger's text (RFC 3461 §6.2.3 lets a DSN leave
	// the content out).
	bare  bool
	rcpts []dsnRcpt
	// notes are lines for the human-readable part, after the
	// recipients: what the report leaves unnamed (dsnrefused.go).
	notes []string
}

// dsnRcpt is one recipient's part of a report (RFC 3464 §2.3).
type dsnRcpt struct {
	address string
	orcpt   string // ORCPT as "address-type; address" (RFC 3461 §4.2), "" if none
	action  string // "" is the report's kind
	err     string // last reply or failure, for failed and delayed
	status  string // RFC 3463 code; "" takes it from err (dsnStatus)
}

// queueReport is the report on those of rcpts of the queue entry e whose
// NOTIFY asks for kind (fsm.NotifyFailure, NotifyDelay, NotifySuccess).
//
// Mail that was not submitted (anyone on port 25 may send it, naming
// any sender and asking for any notice) gets notices that cannot carry
// a stranger's text to an address of the stranger's choosing: a success
// or delay notice returns nothing of the original, and a failure only
// its header section, whatever RET asked (RFC 3461 §6.2.3 lets a DSN
// leave content out). The failure keeps the headers so that a real
// sender can tell which message failed.
func queueReport(e fsm.QueueEntry, rcpts []fsm.QueueRecipient, kind dsnKind, notify string) dsnReport {
	rep := dsnReport{id: e.ID, from: e.From, envID: e.EnvID, hash: e.Hash, arrived: time.UnixMilli(e.Created), kind: kind}
	rep.returns(e.Submitted, e.Ret, e.Size)
	for _, r := range rcpts {
		if r.Wants(notify) {
			rep.rcpts = append(rep.rcpts, dsnRcpt{address: r.Address, orcpt: r.ORCPT, err: r.Error})
		}
	}
	return rep
}

// returns sets what rep returns of an original of size octets that was
// submitted or not, with RET ret (queueReport says why): the whole of it
// only for a submitted failure that asked RET=FULL, nothing for a
// notice other than a failure on mail that was not submitted.
func (rep *dsnReport) returns(submitted bool, ret string, size int64) {
	rep.full = submitted && ret == "FULL" && rep.kind == dsnFailed && size <= maxDSNFull
	rep.bare = !submitted && rep.kind != dsnFailed
}

// reportID names a report about some of entry's recipients by those
// recipients, so that a retried commit of the notice stores it once.
func reportID(entry string, rcpts []string) string {
	sum := sha256.Sum256([]byte(strings.Join(rcpts, "\n")))
	return entry + "-" + hex.EncodeToString(sum[:6])
}

// sendDSN delivers rep to its sender: into its mailbox when it is ours,
// else through the queue. The delivery ID is derived from the report, so
// a worker that retries after a crash adds no second DSN (the state
// machine de-duplicates IDs).
func (n *Node) sendDSN(ctx context.Context, rep dsnReport, now time.Time) error {
	if rep.from == "" || len(rep.rcpts) == 0 {
		return nil // never bounce a bounce
	}
	res, err := n.resolveBounce(ctx, rep.from)
	if errors.Is(err, ErrUnknownRecipient) {
		n.log.Warn("DSN sender unknown; dropped", "id", rep.id, "kind", rep.kind, "sender", rep.from, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	var original string
	if !rep.bare {
		if original, rep.full, err = n.original(ctx, rep); err != nil {
			return err
		}
	}
	body := n.signDSN(n.composeDSN(rep, original, now))
	settings, err := n.state.Settings()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	h, size, replicas, err := n.replicate(ctx, settings, bytes.NewReader(body))
	if err != nil {
		return err
	}
	cmd := &fsm.Deliver{ID: "dsn-" + rep.id + "-" + string(rep.kind), Hash: h.String(), Size: size, Replicas: replicas,
		Mailboxes: res.Mailboxes, InternalDate: now.UnixMilli()}
	if len(res.External) > 0 {
		cmd.Queue = &fsm.QueuePart{From: "", Recipients: res.External, NextAttempt: now.UnixMilli()}
	}
	v, _, err := n.commitDelivery(ctx, cmd)
	if err != nil {
		return err
	}
	n.logRefusedNotice(cmd.ID, v)
	n.queue.m.dsns.Inc()
	n.queue.kick()
	return nil
}

// logRefusedNotice says which mailboxes refused a notice as it was
// committed (a folder full, a mailbox removed or being removed since the
// sender was resolved): the notice is not retried, since a repeat under
// the same delivery ID would only be answered the same, so the log is
// where an operator learns of it.
func (n *Node) logRefusedNotice(id string, v any) {
	var res fsm.DeliverResult
	if err := convert(v, &res); err != nil {
		n.log.Warn("DSN committed; its result unreadable", "id", id, "err", err)
		return
	}
	for addr, code := range res.Rejected {
		n.log.Warn("DSN refused by its sender's mailbox; dropped", "id", id, "mailbox", addr, "code", code, "reason", res.Messages[addr])
	}
}

// original is what rep returns of the original message: all of it for
// rep.full, else its header section; and whether it is all of it. A
// message with a line too long to quote (RFC 5322 §2.1.1; the frontend
// takes longer ones) is returned as its header section, its lines cut:
// a receiver may refuse a notice with such a line, and a message refused
// for it would have its notice refused for it too.
func (n *Node) original(ctx context.Context, rep dsnReport) (string, bool, error) {
	if !rep.full {
		h, err := n.originalHeaders(ctx, rep.hash)
		return h, false, err
	}
	rd, err := n.openBody(ctx, rep.hash)
	if err != nil {
		return "", false, err
	}
	defer rd.Close()
	// One byte past the limit: a body of exactly maxDSNFull bytes is
	// read to its end, where its hash is checked (a damaged copy fails
	// there, not before), and a longer one is not quoted whole.
	b, err := io.ReadAll(io.LimitReader(rd, maxDSNFull+1))
	if err != nil {
		return "", false, err
	}
	if len(b) > maxDSNFull {
		h, err := n.originalHeaders(ctx, rep.hash)
		return h, false, err
	}
	for line := range bytes.Lines(b) {
		if len(bytes.TrimRight(line, "\r\n")) > maxDSNLine {
			h, err := n.originalHeaders(ctx, rep.hash)
			return h, false, err
		}
	}
	return string(b), true, nil
}

func (n *Node) originalHeaders(ctx context.Context, hash string) (string, error) {
	rd, err := n.openBody(ctx, hash)
	if err != nil {
		return "", err
	}
	defer rd.Close()
	br := bufio.NewReader(io.LimitReader(rd, maxDSNHeader))
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if strings.TrimRight(line, "\r\n") == "" {
			break
		}
		b.WriteString(cutLine(strings.TrimRight(line, "\r\n"), maxDSNLine))
		b.WriteString("\r\n")
		if err != nil {
			break
		}
	}
	return b.String(), nil
}

// signDSN puts DKIM-Signature fields on top of a notice we composed, one
// per key of its From: domain (the SRS domain, else the queue's host
// name), so that a receiver applying DMARC to that domain can align on a
// signature and not on SPF alone (RFC 7489 §3.1.1). Only what we wrote
// ourselves is signed here: a relayed bounce may claim any From:
// (dkimKeysFor). A key that fails to sign leaves the notice unsigned
// rather than lost.
func (n *Node) signDSN(body []byte) []byte {
	keys := n.dkimKeysOf(n.srsDomainOr(n.cfg.Queue.Hostname))
	if len(keys) == 0 {
		return body
	}
	fields, err := dkimFieldsOf(bufio.NewReader(bytes.NewReader(body)))
	if err == nil {
		var sig string
		if sig, err = dkimSign(keys, fields, bytes.NewReader(body)); err == nil {
			return append([]byte(sig), body...)
		}
	}
	n.log.Warn("DSN left unsigned", "err", err)
	return body
}

// dsnText is what a report's subject and human part say, per kind.
var dsnText = map[dsnKind]struct{ subject, intro string }{
	dsnFailed:    {"Undelivered Mail Returned to Sender", "Your message could not be delivered to the following recipients:"},
	dsnDelayed:   {"Delayed Mail (still being retried)", "Your message has not been delivered yet to the following recipients."},
	dsnDelivered: {"Successful Mail Delivery Report", "Your message was delivered to the following recipients, as you asked to be told:"},
	dsnRelayed: {"Successful Mail Delivery Report", "Your message was passed on to the following recipients' mail servers, which will not\r\n" +
		"report its delivery:"},
}

// composeDSN renders the report (RFC 3464 §2, §3) with original, the
// returned message or its header section (RFC 6522 §3).
func (n *Node) composeDSN(rep dsnReport, original string, now time.Time) []byte {
	host := n.cfg.Queue.Hostname
	boundary := "dsn-" + rep.id + "-" + deliveryID()[:12]
	date := now.Format(time.RFC1123Z)
	retryUntil := rep.arrived.Add(n.cfg.Queue.Lifetime).Format(time.RFC1123Z)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("From: Mail Delivery System <MAILER-DAEMON@%s>", n.srsDomainOr(host))
	w("To: <%s>", rep.from)
	w("Subject: %s", dsnText[rep.kind].subject)
	w("Date: %s", date)
	w("Message-ID: <dsn.%s.%s@%s>", rep.id, rep.kind, host)
	w("Auto-Submitted: auto-replied") // RFC 3834 §5
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"", boundary)
	w("")
	w("--%s", boundary)
	w("Content-Type: text/plain; charset=us-ascii")
	w("")
	w("%s", dsnText[rep.kind].intro)
	if rep.kind == dsnDelayed {
		w("Delivery will be retried until %s; no action is needed.", retryUntil)
	}
	w("")
	for _, r := range rep.rcpts {
		if r.err != "" {
			w("  <%s>: %s", asciiOnly(r.address), asciiOnly(r.err))
		} else {
			w("  <%s>", asciiOnly(r.address))
		}
	}
	for _, note := range rep.notes {
		w("  %s", asciiOnly(note))
	}
	w("")
	w("--%s", boundary)
	w("Content-Type: message/delivery-status")
	w("")
	// Per-message fields (RFC 3464 §2.2).
	if rep.envID != "" {
		w("Original-Envelope-Id: %s", asciiOnly(rep.envID))
	}
	w("Reporting-MTA: dns; %s", host)
	w("Arrival-Date: %s", rep.arrived.Format(time.RFC1123Z))
	for _, r := range rep.rcpts {
		// Per-recipient fields (RFC 3464 §2.3).
		w("")
		typ, addr, _ := strings.Cut(r.orcpt, ";")
		// Optional (RFC 3464 §2.3.1): left out when it cannot be written
		// within a line (an ORCPT of 500 octets can triple as xtext).
		if orcpt := "Original-Recipient: " + dsnAddress(strings.TrimSpace(typ), strings.TrimSpace(addr)); r.orcpt != "" && len(orcpt) <= maxDSNLine {
			w("%s", orcpt)
		}
		final := "Final-Recipient: " + dsnAddress("", r.address)
		if len(final) > maxDSNLine { // no address a path can hold is so long
			final = "Final-Recipient: rfc822; " + asciiOnly(r.address)
		}
		w("%s", final)
		w("Action: %s", cmp.Or(r.action, string(rep.kind)))
		w("Status: %s", cmp.Or(r.status, dsnStatus(r.err, rep.kind)))
		if r.err != "" {
			w("Diagnostic-Code: %s; %s", diagnosticType(r.err), asciiOnly(r.err))
		}
		w("Last-Attempt-Date: %s", date)
		if rep.kind == dsnDelayed {
			w("Will-Retry-Until: %s", retryUntil)
		}
	}
	w("")
	if !rep.bare {
		w("--%s", boundary)
		w("%s", returnedPartType(original, rep.full))
		w("")
		b.WriteString(original)
		if !strings.HasSuffix(original, "\r\n") {
			w("")
		}
		w("")
	}
	w("--%s--", boundary)
	return []byte(b.String())
}

// returnedPartType is the header fields of the part that returns
// original: the whole message or its header section (RFC 3464 §2,
// RFC 6522 §3). A header section in UTF-8 is typed as RFC 6533 §6.3-6.4
// has it (message/global, message/global-headers), and a part with any
// octet outside ASCII says it is 8bit (RFC 2045 §6.2; MIME's default is
// 7bit).
func returnedPartType(original string, full bool) string {
	header, _, _ := strings.Cut(original, "\r\n\r\n")
	typ := "text/rfc822-headers"
	switch {
	case full && isASCII(header):
		typ = "message/rfc822"
	case full:
		typ = "message/global"
	case !isASCII(header):
		typ = "message/global-headers"
	}
	if isASCII(original) {
		return "Content-Type: " + typ
	}
	return "Content-Type: " + typ + "\r\nContent-Transfer-Encoding: 8bit"
}

// diagnosticType names what a recorded error is (RFC 3464 §2.3.6): a
// remote server's reply, which starts with its three-digit code, is
// "smtp"; our own words (an expired lifetime, a domain that takes no
// mail) are no SMTP reply, and go under an X- type of our own.
func diagnosticType(errText string) string {
	if len(errText) >= 4 && errText[0] >= '2' && errText[0] <= '5' && isDigits(errText[1:3]) && (errText[3] == ' ' || errText[3] == '-') {
		return "smtp"
	}
	return "X-PowerMail"
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// dsnStatus is the RFC 3463 code from a recorded error, or a generic one.
func dsnStatus(errText string, kind dsnKind) string {
	if kind == dsnDelivered || kind == dsnRelayed {
		return "2.0.0"
	}
	// The class must match the action (RFC 3464 §2.3.4): a 2.x.y found in
	// a server's free text is no status of a failure.
	switch m := enhancedCode.FindString(errText); {
	case m == "":
	case kind == dsnDelayed && m[0] == '4', kind == dsnFailed && m[0] == '5':
		return m
	case kind == dsnFailed && m[0] == '4':
		return "5" + m[1:] // expired after temporary failures
	}
	if kind == dsnDelayed {
		return "4.0.0"
	}
	return "5.0.0"
}

// dsnAddress renders an address of type typ ("" when none was given) for
// a message/delivery-status field (RFC 3464 §2.3.1, §2.3.2): as it is
// when it is ASCII (its local part quoted where it needs it), else with
// type utf-8 in the utf-8-addr-xtext form RFC 6533 §3 requires there,
// which keeps the field ASCII and the address recoverable.
func dsnAddress(typ, addr string) string {
	typ = strings.ToLower(typ)
	if typ != "utf-8" && !strings.ContainsFunc(addr, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		return cmp.Or(typ, "rfc822") + "; " + SMTPPath(addr)
	}
	if typ != "" && typ != "utf-8" && typ != "rfc822" {
		return asciiOnly(typ + "; " + addr) // no other type can hold it
	}
	var b strings.Builder
	b.WriteString("utf-8; ")
	for _, r := range addr {
		switch {
		case r < 0x20 || r == 0x7f:
			b.WriteByte('?') // no address holds one (RFC 6533 §3 cannot write all)
		case r > 0x20 && r < 0x7f && r != '+' && r != '=' && r != '\\':
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "\\x{%X}", r)
		}
	}
	return b.String()
}

// cutLine is s cut to at most max octets, at a UTF-8 character boundary.
func cutLine(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}

func asciiOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

func (n *Node) srsDomainOr(def string) string {
	if d := n.srsDomain(); d != "" {
		return d
	}
	return def
}
