package node

import (
	"bufio"
	"bytes"
	"context"
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
	dsnFailed  dsnKind = "failed"
	dsnDelayed dsnKind = "delayed"
)

// maxDSNHeader caps the original header section quoted in a DSN.
const maxDSNHeader = 64 << 10

var enhancedCode = regexp.MustCompile(`\b([245])\.(\d{1,3})\.(\d{1,3})\b`)

// sendDSN delivers a DSN about rcpts of e to e.From: into its mailbox
// when it is ours, else through the queue. The delivery ID is derived
// from the entry, so a worker that retries after a crash adds no second
// DSN (the state machine de-duplicates IDs).
func (n *Node) sendDSN(ctx context.Context, e fsm.QueueEntry, rcpts []fsm.QueueRecipient, kind dsnKind, now time.Time) error {
	if e.From == "" || len(rcpts) == 0 {
		return nil // never bounce a bounce
	}
	res, err := n.resolveBounce(ctx, e.From)
	if errors.Is(err, ErrUnknownRecipient) {
		n.log.Warn("queue: DSN sender unknown; dropped", "id", e.ID, "sender", e.From, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	headers, err := n.originalHeaders(ctx, e.Hash)
	if err != nil {
		return err
	}
	body := n.composeDSN(e, rcpts, kind, headers, now)
	settings, err := n.state.Settings()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	h, size, replicas, err := n.replicate(ctx, settings, bytes.NewReader(body))
	if err != nil {
		return err
	}
	cmd := &fsm.Deliver{ID: "dsn-" + e.ID + "-" + string(kind), Hash: h.String(), Size: size, Replicas: replicas,
		Mailboxes: res.Mailboxes, InternalDate: now.UnixMilli()}
	if len(res.External) > 0 {
		cmd.Queue = &fsm.QueuePart{From: "", Recipients: res.External, NextAttempt: now.UnixMilli()}
	}
	if _, _, err := n.commitDelivery(ctx, cmd); err != nil {
		return err
	}
	n.queue.m.dsns.Inc()
	n.queue.kick()
	return nil
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
		b.WriteString(strings.TrimRight(line, "\r\n"))
		b.WriteString("\r\n")
		if err != nil {
			break
		}
	}
	return b.String(), nil
}

// composeDSN renders the report (RFC 3464 §2, §3).
func (n *Node) composeDSN(e fsm.QueueEntry, rcpts []fsm.QueueRecipient, kind dsnKind, headers string, now time.Time) []byte {
	host := n.cfg.Queue.Hostname
	boundary := "dsn-" + e.ID + "-" + deliveryID()[:12]
	date := now.Format(time.RFC1123Z)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("From: Mail Delivery System <MAILER-DAEMON@%s>", n.srsDomainOr(host))
	w("To: <%s>", e.From)
	if kind == dsnFailed {
		w("Subject: Undelivered Mail Returned to Sender")
	} else {
		w("Subject: Delayed Mail (still being retried)")
	}
	w("Date: %s", date)
	w("Message-ID: <dsn.%s.%s@%s>", e.ID, kind, host)
	w("Auto-Submitted: auto-replied") // RFC 3834 §5
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"", boundary)
	w("")
	w("--%s", boundary)
	w("Content-Type: text/plain; charset=us-ascii")
	w("")
	if kind == dsnFailed {
		w("Your message could not be delivered to the following recipients:")
	} else {
		w("Your message has not been delivered yet to the following recipients.")
		w("Delivery will be retried until %s; no action is needed.", time.UnixMilli(e.Created).Add(n.cfg.Queue.Lifetime).Format(time.RFC1123Z))
	}
	w("")
	for _, r := range rcpts {
		w("  <%s>: %s", r.Address, asciiOnly(r.Error))
	}
	w("")
	w("--%s", boundary)
	w("Content-Type: message/delivery-status")
	w("")
	// Per-message fields (RFC 3464 §2.2).
	w("Reporting-MTA: dns; %s", host)
	w("Arrival-Date: %s", time.UnixMilli(e.Created).Format(time.RFC1123Z))
	for _, r := range rcpts {
		// Per-recipient fields (RFC 3464 §2.3).
		w("")
		w("Final-Recipient: rfc822; %s", r.Address)
		w("Action: %s", kind)
		w("Status: %s", dsnStatus(r.Error, kind))
		if r.Error != "" {
			w("Diagnostic-Code: smtp; %s", asciiOnly(r.Error))
		}
		w("Last-Attempt-Date: %s", date)
		if kind == dsnDelayed {
			w("Will-Retry-Until: %s", time.UnixMilli(e.Created).Add(n.cfg.Queue.Lifetime).Format(time.RFC1123Z))
		}
	}
	w("")
	w("--%s", boundary)
	w("Content-Type: text/rfc822-headers")
	w("")
	b.WriteString(headers)
	w("")
	w("--%s--", boundary)
	return []byte(b.String())
}

// dsnStatus is the RFC 3463 code from a recorded error, or a generic one.
func dsnStatus(errText string, kind dsnKind) string {
	if m := enhancedCode.FindString(errText); m != "" && (kind == dsnDelayed) == (m[0] == '4') {
		return m
	}
	if m := enhancedCode.FindString(errText); m != "" && kind == dsnFailed && m[0] == '4' {
		return "5" + m[1:] // expired after temporary failures
	}
	if kind == dsnDelayed {
		return "4.0.0"
	}
	return "5.0.0"
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
