package frontend

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// What one connection may try at RCPT. Every miss costs the node a raft
// read barrier (node.Resolve confirms a refusal on the leader), and a
// client that guesses addresses learns from each 250 and 550 which
// exist. RFC 5321 §7.8 lets a server close a connection that sends
// mostly invalid recipients "after an appropriate number of 5yz
// (normally 550) replies"; Postfix does it with smtpd_hard_error_limit
// (20) and smtpd_soft_error_limit with smtpd_error_sleep_time (a delay
// per error past the soft limit). Here:
//
//   - every RCPT refused with a 5xx counts, per connection (the counter
//     lives on the trackedConn: RSET, EHLO, STARTTLS and delivered
//     messages do not reset it); temporary refusals (451, 452) are this
//     server's state, not the client's guess, and do not count;
//   - the first freeRejectedRcpts refusals are answered at once, each
//     later one RejectedRcptDelay later than the one before, up to
//     maxRefusalDelaySteps steps;
//   - once MaxRejectedRcpts refusals were answered, the next RCPT gets
//     421 4.7.0 without a directory lookup, and the connection is closed
//     after that reply (trackedConn.hangUp). Answering it after a lookup
//     would let a harvester go on reading 250s until its next miss.
//
// LMTP has neither limit by default (SMTPConfig.MaxRejectedRcpts).

// maxRefusalDelaySteps bounds the delay before one refused RCPT's reply
// (15 s with the default step), so that a configuration with a high
// MaxRejectedRcpts, or none, never approaches the client's 5-minute
// RCPT timeout (RFC 5321 §4.5.3.2.3).
const maxRefusalDelaySteps = 15

// refusedRcpts is the connection's count of RCPTs refused with a 5xx.
// It lives on the trackedConn, not in the go-smtp session, so that
// STARTTLS, which starts a new session, does not reset it.
func (s *session) refusedRcpts() *atomic.Int64 {
	if s.tc != nil {
		return &s.tc.refusedRcpts
	}
	return &s.ownRefused
}

// checkRefusalLimit answers a RCPT on a connection that has used up its
// refusals: 421 4.7.0, then the connection closes.
func (s *session) checkRefusalLimit() *smtp.SMTPError {
	max := s.srv.cfg.MaxRejectedRcpts
	n := s.refusedRcpts().Load()
	if max <= 0 || n < int64(max) {
		return nil
	}
	if !s.tc.isHungUp() {
		s.log.Info("smtp: too many rejected recipients, closing", "refused", n, "limit", max)
	}
	return s.lastWord(replyTooManyRejectedRcpts(max))
}

// lastWord makes r the connection's last reply: the connection closes
// after it, with nothing more from go-smtp (trackedConn.hangUp).
func (s *session) lastWord(r *smtp.SMTPError) *smtp.SMTPError {
	if !s.tc.isHungUp() {
		s.farewell = r
		s.tc.hangUp()
	}
	return r
}

// closing is the reply to any command that go-smtp passes on after the
// connection's last reply (one pipelined behind it): the same 421, so
// that nothing is accepted, let alone delivered, after it.
func (s *session) closing() *smtp.SMTPError {
	if !s.tc.isHungUp() {
		return nil
	}
	if s.farewell != nil {
		return s.farewell
	}
	return replyTooManyRejectedRcpts(s.srv.cfg.MaxRejectedRcpts)
}

// countRefusal counts r if it refuses a RCPT for good, and holds the
// reply back for the refusal's delay. It returns r.
func (s *session) countRefusal(r *smtp.SMTPError) *smtp.SMTPError {
	if r == nil || r.Code/100 != 5 {
		return r
	}
	n := s.refusedRcpts().Add(1)
	s.pause(refusalDelay(n, s.srv.cfg.RejectedRcptDelay))
	return r
}

// refusalDelay is how long the reply to a connection's n-th refused RCPT
// waits: nothing for the first freeRejectedRcpts, then one step more for
// each, up to maxRefusalDelaySteps steps.
func refusalDelay(n int64, step time.Duration) time.Duration {
	if step <= 0 || n <= freeRejectedRcpts {
		return 0
	}
	return time.Duration(min(n-freeRejectedRcpts, maxRefusalDelaySteps)) * step
}

// pause waits d, or less if the session ends (Close) or the server is
// shutting down, when holding a reply back only delays the shutdown.
func (s *session) pause(d time.Duration) {
	if d <= 0 || s.srv.draining.Load() {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	}
}

// srsPrefix starts the local part of an SRS address of ours, in any
// case, as node.Resolve recognises it (node/srs.go).
const srsPrefix = "SRS0="

// isSRS reports whether addr is shaped like an SRS address.
func isSRS(addr string) bool {
	return len(addr) > len(srsPrefix) && strings.EqualFold(addr[:len(srsPrefix)], srsPrefix)
}

// checkSRS refuses an SRS recipient unless the transaction is a bounce.
// The node routes such an address, if its hash and stamp are valid, back
// out to the forwarded message's original sender, through the queue:
// that is only for the delivery status notification a receiving server
// sends about mail we forwarded, and RFC 5321 §4.5.5 gives that the null
// reverse-path. Any other sender would use us as a relay to whoever an
// SRS address it saw (in a Return-Path:, say) encodes, for 21 days.
//
// On the MX listener and on LMTP alike: the MTA in front of LMTP passes
// on the envelope sender it received from the Internet, so LMTP is the
// same door one hop later. Submission keeps its rule (an authenticated
// user may send anywhere, SRS addresses included).
func (s *session) checkSRS(tx *txn, to string) *smtp.SMTPError {
	if s.srv.cfg.Submission || tx.from == "" || !isSRS(to) {
		return nil
	}
	s.log.Info("smtp: recipient refused", "rcpt", to, "code", 550, "reason", "SRS address from a non-null sender", "from", tx.from)
	return replySRSNotBounce()
}
