package frontend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"powermail/node"
)

// Data receives a message sent with DATA or BDAT (go-smtp feeds both
// through r) and answers once for the whole transaction.
func (s *session) Data(r io.Reader) error {
	if rep := s.closing(); rep != nil { // pipelined after the connection's last reply
		s.srv.metrics.reply(cmdData, rep)
		return rep
	}
	tx := s.snapshot()
	if tx == nil || len(tx.rcpts) == 0 {
		return replyBadSequence("need MAIL and RCPT first") // RFC 5321 §4.1.4
	}
	out := s.deliver(tx, r)
	rep := out.smtpReply(tx)
	s.logDelivery(tx, out, rep)
	s.srv.metrics.reply(cmdData, asError(rep))
	return asError(rep)
}

// LMTPData is Data for LMTP: RFC 2033 §4.2 wants one reply per accepted
// RCPT, in order, so a rejected mailbox is reported instead of lost.
func (s *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	tx := s.snapshot()
	if rep := s.closing(); rep != nil { // go-smtp gives it to every recipient
		n := 1
		if tx != nil {
			n = max(1, len(tx.rcpts))
		}
		for range n {
			s.srv.metrics.reply(cmdData, rep)
		}
		return rep
	}
	if tx == nil || len(tx.rcpts) == 0 {
		return replyBadSequence("need MAIL and RCPT first")
	}
	out := s.deliver(tx, r)
	if out.failed != nil {
		s.logDelivery(tx, out, out.failed)
		for range tx.rcpts {
			s.srv.metrics.reply(cmdData, out.failed)
		}
		return out.failed // go-smtp gives it to every recipient
	}
	for _, rc := range tx.rcpts {
		rep := out.lmtpReply(tx, rc)
		status.SetStatus(rc.sent, rep)
		s.srv.metrics.reply(cmdData, asError(rep))
	}
	s.logDelivery(tx, out, nil)
	// go-smtp gives the return value to every RCPT that got no status.
	// There should be none; if go-smtp's list ever differs from ours,
	// such a recipient must not get a 250.
	return replyInternal()
}

// outcome is the result of one Deliver call, judged.
type outcome struct {
	failed *smtp.SMTPError // non-nil: nothing was delivered
	err    error           // what Deliver or the body reader reported
	res    node.DeliveryResult
	bytes  int64
	took   time.Duration
}

// deliver makes the transaction's single Deliver call. The body is
// streamed, never buffered (design brief, write path step 2): the trace
// header fields are a small reader in front of go-smtp's data reader.
func (s *session) deliver(tx *txn, r io.Reader) outcome {
	start := time.Now()
	// go-smtp passes BDAT chunks through a pipe, and DATA through its
	// dot-unstuffing reader.
	_, chunked := r.(*io.PipeReader)
	body := &bodyReader{r: r, tc: s.tc, chunked: chunked}
	if !chunked {
		body.maxLine = s.srv.cfg.MaxLineLength
	}
	hdr := traceHeaders(traceInfo{
		from:     tx.from,
		helo:     tx.helo,
		remote:   s.remote,
		by:       s.srv.cfg.Hostname,
		protocol: withProtocol(s.srv.cfg.LMTP, tx.tls, tx.utf8, s.user != ""),
		id:       tx.id,
		rcpts:    rcptAddrs(tx.rcpts),
		date:     start,
	})
	msg := node.Message{From: tx.from, Mailboxes: slices.Clone(tx.boxes), External: slices.Clone(tx.external), Received: start,
		Notify: tx.dsnRequest(!s.srv.cfg.LMTP), Submitted: s.srv.cfg.Submission && s.user != ""}

	var content io.Reader = body
	if s.srv.cfg.Submission {
		var refused *smtp.SMTPError
		if content, refused = s.checkAuthor(body, tx.from); refused != nil {
			return s.refuseContent(body, refused, start)
		}
	}
	// Every line is stored with CRLF: go-smtp passes a bare LF through
	// DATA, and BDAT chunks are raw (crlfReader). The trace fields are
	// CRLF already.
	content = newCRLFReader(content)
	ctx, cancel := context.WithTimeout(s.ctx, s.srv.cfg.DeliverTimeout)
	// readOnly hides MultiReader's WriteTo, which allocates 32 KiB per call.
	res, err := s.srv.d.Deliver(ctx, msg, readOnly{io.MultiReader(strings.NewReader(hdr), content)})
	cancel()

	out := outcome{res: res, err: err, took: time.Since(start)}
	out.failed = s.judge(body, err)
	if out.failed != nil && body.err == nil && !body.eof {
		// Deliver gave up early. Consume the rest here, so that pipelined
		// BDAT chunks are not parsed as commands (RFC 3030: the server
		// consumes every chunk, even after an error).
		_, _ = io.Copy(io.Discard, body)
	}
	out.bytes = body.n
	if out.err == nil {
		out.err = body.err
	}
	return out
}

// refuseContent ends a transaction refused for what the message says,
// before anything was stored: the rest of the message is read and
// dropped (RFC 3030: every BDAT chunk is consumed), and a failure to
// read it takes precedence, since the client then sees no reply anyway.
func (s *session) refuseContent(body *bodyReader, refused *smtp.SMTPError, start time.Time) outcome {
	if body.err == nil && !body.eof {
		_, _ = io.Copy(io.Discard, body)
	}
	if body.err != nil {
		refused = s.replyForBodyError(body.err)
	}
	return outcome{failed: refused, err: errors.New(refused.Message), bytes: body.n, took: time.Since(start)}
}

// dsnRequest is what the client asked of delivery status notifications
// (RFC 3461), or nil when it gave no DSN parameter and there is nothing
// to report. With oneReply (SMTP, not LMTP) every RCPT that reached a
// mailbox is listed for a failure notice, since the reply after the dot
// cannot report a mailbox the commit refuses beside one that took the
// message (node/dsnrefused.go); without a NOTIFY, RCPTs want failures
// reported (RFC 3461 §4.1). A RCPT that left a full member out is
// listed over either protocol: no reply names that member.
func (tx *txn) dsnRequest(oneReply bool) *node.DSNRequest {
	asked := tx.envID != "" || tx.ret != ""
	req := &node.DSNRequest{EnvID: tx.envID, Ret: tx.ret, PerRecipient: !oneReply}
	for _, rc := range tx.rcpts {
		asked = asked || len(rc.notify) > 0 || rc.orcpt != ""
		nr := node.NotifyRcpt{Address: rc.addr, ORCPT: rc.orcpt, Notify: strings.Join(rc.notify, ","),
			Mailboxes: slices.Clone(rc.boxes), External: len(rc.ext), Full: rc.full, FullMore: rc.fullMore}
		if slices.Contains(rc.notify, string(smtp.DSNNotifySuccess)) {
			req.Success = append(req.Success, nr)
		}
		if oneReply && len(rc.boxes) > 0 || len(rc.full) > 0 || rc.fullMore > 0 {
			req.Failure = append(req.Failure, nr)
		}
	}
	if !asked && len(req.Failure) == 0 {
		return nil
	}
	if asked {
		for _, target := range tx.external {
			req.Forwarded = append(req.Forwarded, tx.targetDSN(target))
		}
	}
	return req
}

// targetDSN is the DSN parameters of an external target, sent once
// however many RCPTs reached it. Reached by several, it asks every
// notice any of them asked (no NOTIFY counting as FAILURE and DELAY,
// RFC 3461 §4.1; NEVER only when all said it), with the ORCPT of the
// first that asks one: taking the first RCPT's alone let its NEVER
// silence the failure another recipient asked to hear of.
func (tx *txn) targetDSN(target string) node.ForwardDSN {
	var all []node.ForwardDSN
	for _, rc := range tx.rcpts {
		if slices.Contains(rc.ext, target) {
			all = append(all, rc.forwardDSN())
		}
	}
	if len(all) == 1 {
		return all[0]
	}
	asked := map[string]bool{}
	out := node.ForwardDSN{ORCPT: all[0].ORCPT}
	first := true
	for _, f := range all {
		kinds := strings.Split(f.Notify, ",")
		if f.Notify == "" {
			kinds = []string{string(smtp.DSNNotifyFailure), string(smtp.DSNNotifyDelayed)}
		}
		for _, k := range kinds {
			if k != string(smtp.DSNNotifyNever) {
				if first {
					out.ORCPT, first = f.ORCPT, false
				}
				asked[k] = true
			}
		}
	}
	var notify []string
	for _, k := range []smtp.DSNNotify{smtp.DSNNotifySuccess, smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed} {
		if asked[string(k)] {
			notify = append(notify, string(k))
		}
	}
	if len(notify) == 0 {
		notify = []string{string(smtp.DSNNotifyNever)}
	}
	out.Notify = strings.Join(notify, ",")
	return out
}

// forwardDSN is the DSN parameters rc passes on to its external targets:
// its ORCPT, and its NOTIFY without SUCCESS when it expanded to several
// targets (a member left out as full among them), for which the
// expansion itself was reported (RFC 3461 §6.2.7.3). An ORCPT the client did not give is not made up: reports
// show Original-Recipient only when it was supplied (RFC 3464 §2.3.1).
func (rc rcptEntry) forwardDSN() node.ForwardDSN {
	f := node.ForwardDSN{ORCPT: rc.orcpt}
	notify := rc.notify
	if len(rc.boxes)+len(rc.ext)+len(rc.full)+rc.fullMore > 1 && slices.Contains(notify, string(smtp.DSNNotifySuccess)) {
		notify = slices.DeleteFunc(slices.Clone(notify), func(k string) bool { return k == string(smtp.DSNNotifySuccess) })
		if len(notify) == 0 {
			notify = []string{string(smtp.DSNNotifyNever)}
		}
	}
	f.Notify = strings.Join(notify, ",")
	return f
}

// judge decides whether a Deliver call may be acknowledged. It returns
// nil only when Deliver returned nil and the whole body, up to the final
// dot, was read without error: RFC 5321 §4.2.5, Promise 1.
func (s *session) judge(body *bodyReader, err error) *smtp.SMTPError {
	switch {
	case body.err != nil:
		if err == nil {
			s.log.Error("smtp: Deliver succeeded although reading the body failed", "err", body.err)
		}
		return s.replyForBodyError(body.err)
	case err != nil && errors.Is(err, node.ErrInsufficientStorage):
		return replyInsufficientStorage()
	case err != nil && errors.Is(err, node.ErrUnavailable):
		return replyUnavailable()
	case err != nil:
		return replyInternal()
	case !body.eof:
		s.log.Error("smtp: Deliver succeeded without reading the whole body")
		return replyInternal()
	}
	return nil
}

// replyForBodyError maps a failure to read the message from the client.
func (s *session) replyForBodyError(err error) *smtp.SMTPError {
	switch {
	case errors.Is(err, smtp.ErrDataTooLarge):
		return replyTooBig(s.srv.cfg.MaxMessageBytes)
	case errors.Is(err, smtp.ErrTooLongLine):
		// The rest of the message is not read: the connection ends
		// after the reply rather than take more of a message that is
		// refused already (go-smtp would read it as DATA).
		return s.lastWord(replyLineTooLong(s.srv.cfg.MaxLineLength))
	default: // timeout, connection lost, BDAT aborted by RSET
		return replyTransferFailed()
	}
}

// smtpReply is the single SMTP reply after the final dot. With some
// mailboxes rejected and others stored it must say 250 (the others have
// the message); see DESIGN.md for this limitation, which LMTP avoids.
func (o outcome) smtpReply(tx *txn) *smtp.SMTPError {
	if o.failed != nil {
		return o.failed
	}
	stored := 0
	for _, b := range tx.boxes {
		if _, rejected := o.res.Rejected[b]; !rejected {
			stored++
		}
	}
	if o.queued(tx.external) {
		// The external targets are queued, in the same commit.
		return replyStored(tx.id, stored+len(tx.external), len(tx.boxes)+len(tx.external))
	}
	if stored == 0 {
		if r := o.pickRejection(tx.boxes); r != nil {
			return r
		}
		return replyInternal() // only external targets, and they were not queued
	}
	return replyStored(tx.id, stored, len(tx.boxes))
}

// lmtpReply is one recipient's LMTP reply: 250 only if every mailbox it
// expanded to was stored.
func (o outcome) lmtpReply(tx *txn, rc rcptEntry) *smtp.SMTPError {
	if r := o.pickRejection(rc.boxes); r != nil {
		return r
	}
	if len(rc.ext) > 0 && !o.queued(rc.ext) {
		return replyInternal()
	}
	return replyStored(tx.id, len(rc.boxes)+len(rc.ext), len(rc.boxes)+len(rc.ext))
}

// queued reports whether external targets exist and Deliver queued them.
func (o outcome) queued(external []string) bool {
	return len(external) > 0 && o.res.Queued != ""
}

// pickRejection returns the reply for the first rejected mailbox among
// boxes, preferring a temporary one: a retry then reaches every mailbox,
// and a permanent cause shows up again at RCPT. It returns nil when none
// was rejected.
func (o outcome) pickRejection(boxes []string) *smtp.SMTPError {
	var first *smtp.SMTPError
	for _, b := range boxes {
		err, rejected := o.res.Rejected[b]
		if !rejected {
			continue
		}
		r := replyForDirectoryError(err)
		if isTemporary(r) {
			return r
		}
		if first == nil {
			first = r
		}
	}
	return first
}

func (s *session) logDelivery(tx *txn, o outcome, rep *smtp.SMTPError) {
	level, code := slog.LevelInfo, 250
	if rep != nil {
		code = rep.Code
	}
	if o.failed != nil {
		level = slog.LevelWarn
	}
	s.srv.metrics.bytes.Add(float64(o.bytes))
	s.srv.metrics.took.Observe(o.took.Seconds())
	s.log.Log(s.ctx, level, "smtp: transaction",
		"id", tx.id, "from", tx.from, "rcpts", len(tx.rcpts), "mailboxes", len(tx.boxes),
		"rejected", len(o.res.Rejected), "bytes", o.bytes, "code", code,
		"took", o.took, "err", o.err)
}

func rcptAddrs(rs []rcptEntry) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.addr
	}
	return out
}

// ErrMessageIncomplete is what a Deliverer reads from the body when the
// client's message did not arrive whole: the connection was lost or timed
// out, BDAT was aborted, or the message broke a limit. It deliberately
// does not wrap the cause: go-smtp reports a connection lost during DATA
// as io.ErrUnexpectedEOF, and io.ReadFull passes that through unchanged,
// so a reader that takes ErrUnexpectedEOF for the end of a short body
// would store, and commit, the truncated message of a client that was
// never answered (RFC 5321 §4.2.5, Promise 1).
var ErrMessageIncomplete = errors.New("frontend: message data incomplete")

// bodyReader records how reading the client's message ended, so that a
// Deliver error caused by the client is answered as the client's fault.
// Only the Deliver call reads it, then deliver itself.
type bodyReader struct {
	r       io.Reader
	tc      *trackedConn // whose input failure tells a cut chunk; may be nil
	chunked bool         // BDAT: the end is go-smtp closing its pipe
	maxLine int          // DATA: the longest line, its line end included; 0 for none
	line    int          // octets of the current line read so far
	lastCR  bool         // the last octet counted was a CR
	n       int64
	eof     bool  // the final dot was seen
	err     error // first read error other than io.EOF
}

// errChunkCut is a BDAT transfer whose connection failed before the
// end of its LAST chunk: go-smtp read the failure as the chunk's end
// (RFC 3030 §2: a chunk is exactly its announced size).
var errChunkCut = fmt.Errorf("frontend: connection lost inside a BDAT chunk: %w", io.ErrUnexpectedEOF)

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.incomplete()
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.maxLine > 0 && !b.linesFit(p[:n]) {
		b.err = smtp.ErrTooLongLine
		return n, b.incomplete()
	}
	switch {
	case err == io.EOF && b.chunked && b.tc.readFailed():
		// go-smtp closes the pipe only after copying the LAST chunk,
		// and it met the connection's failure, if any, before that.
		b.err = errChunkCut
		return n, b.incomplete()
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.err = err
		return n, b.incomplete()
	}
	return n, err
}

// linesFit counts p into the current line and reports whether every
// line stays within maxLine octets as stored, its line end included
// (RFC 5321 §4.5.3.1.6 counts the CRLF in a text line's 1000). A bare
// LF is stored as CRLF (crlfReader), so it counts two octets.
func (b *bodyReader) linesFit(p []byte) bool {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			b.line += len(p)
			b.lastCR = p[len(p)-1] == '\r'
			return b.line <= b.maxLine
		}
		end := b.line + i + 1
		if (i == 0 && !b.lastCR) || (i > 0 && p[i-1] != '\r') {
			end++
		}
		if end > b.maxLine {
			return false
		}
		b.line, b.lastCR = 0, false
		p = p[i+1:]
	}
	return true
}

// incomplete is the error the Deliverer sees for b.err; judge and
// replyForBodyError look at b.err itself.
func (b *bodyReader) incomplete() error {
	return fmt.Errorf("%w: %v", ErrMessageIncomplete, b.err)
}

// readOnly exposes only Read.
type readOnly struct{ r io.Reader }

func (r readOnly) Read(p []byte) (int, error) { return r.r.Read(p) }
