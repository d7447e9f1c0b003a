package frontend

import (
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-smtp"

	"powermail/node"
)

// Every reply this package chooses is built here, so that DESIGN.md's
// table has one place to be checked against. go-smtp turns any error that
// is not an *smtp.SMTPError into a permanent 554 after DATA, so session
// methods return only values made by reply (Promise 2).

// reply builds an SMTP reply carrying a deliberate basic and enhanced
// (RFC 3463, advertised per RFC 2034) status code.
func reply(code int, class, subject, detail int, text string) *smtp.SMTPError {
	return &smtp.SMTPError{
		Code:         code,
		EnhancedCode: smtp.EnhancedCode{class, subject, detail},
		Message:      text,
	}
}

// asError converts r to an error without creating a non-nil interface
// holding a nil pointer.
func asError(r *smtp.SMTPError) error {
	if r == nil {
		return nil
	}
	return r
}

// RFC 5321 §4.2.5 / §6.1: a 2yz after the final dot takes responsibility
// for the message. Only deliver's success path builds this.
func replyStored(id string, delivered, total int) *smtp.SMTPError {
	text := "OK: stored as " + id
	if delivered != total {
		text = fmt.Sprintf("%s (%d of %d mailboxes)", text, delivered, total)
	}
	return reply(250, 2, 0, 0, text)
}

// RCPT and per-mailbox outcomes (RFC 5321 §4.2.2, §4.3.2; RFC 3463).
func replyUnknownRecipient() *smtp.SMTPError {
	return reply(550, 5, 1, 1, "no such mailbox here")
}

func replyRelayDenied() *smtp.SMTPError {
	// RFC 5321 §3.6: relaying is the server's choice; this one never
	// relays, whatever the sender (Promise 6).
	return reply(550, 5, 7, 1, "relaying denied")
}

func replySRSNotBounce() *smtp.SMTPError {
	// An SRS address of ours routes mail back to a forwarded message's
	// sender; only a bounce, which has the null reverse-path (RFC 5321
	// §4.5.5), may use it, or it would relay for anyone who saw one.
	// Permanent: the same sender is refused again (RFC 3463 X.7.1).
	return reply(550, 5, 7, 1, "SRS address accepts only bounces (null sender, RFC 5321 section 4.5.5)")
}

func replyTooManyRejectedRcpts(max int) *smtp.SMTPError {
	// RFC 5321 §7.8: a server may close a connection that sends mostly
	// invalid recipients; §3.8: with 421. X.7.0 (RFC 3463): a policy
	// refusal of this connection, which the client may retry later.
	return reply(421, 4, 7, 0, fmt.Sprintf("too many rejected recipients (%d) on this connection, closing", max))
}

func replyExternalTarget() *smtp.SMTPError {
	return reply(451, 4, 3, 0, "forwarding outside this system is not available yet, try again later")
}

func replyMailboxRemoving() *smtp.SMTPError {
	// RFC 5321 §4.2.3: 450, mailbox unavailable; RFC 3463 X.2.1, mailbox
	// not accepting messages. Temporary: a retry finds the mailbox gone
	// (550) or, if the removal was undone, takes the message.
	return reply(450, 4, 2, 1, "mailbox is being removed, try again later")
}

func replyOverQuota() *smtp.SMTPError {
	return reply(452, 4, 2, 2, "mailbox full, try again later")
}

func replyFolderFull() *smtp.SMTPError {
	// The INBOX has given its last UID (RFC 9051 §2.3.1.1: 32-bit and
	// strictly ascending). Unlike a quota, waiting never frees one:
	// expunging does not lower UIDNEXT, so only an operator can help.
	// Permanent, then (RFC 5321 §4.2.2 552, RFC 3463 X.2.2 mailbox
	// full); it is answered after the data, where 552 is not read as the
	// old "too many recipients" (RFC 5321 §4.5.3.1.10).
	return reply(552, 5, 2, 2, "mailbox full: its folder has used all its message numbers")
}

func replyUnavailable() *smtp.SMTPError {
	return reply(451, 4, 3, 0, "temporarily unavailable, try again later")
}

func replyInsufficientStorage() *smtp.SMTPError {
	// RFC 5321 §4.2.3 (452) and RFC 3463 X.3.1 (mail system full).
	return reply(452, 4, 3, 1, "insufficient system storage, try again later")
}

func replyInternal() *smtp.SMTPError {
	return reply(451, 4, 3, 0, "local error, try again later")
}

func replyTooManyRecipients(max int) *smtp.SMTPError {
	// RFC 5321 §4.5.3.1.10: 452, and the client sends the rest later.
	return reply(452, 4, 5, 3, fmt.Sprintf("too many recipients (at most %d)", max))
}

func replyTooManyTargets() *smtp.SMTPError {
	// The RCPTs so far, with their forwards expanded, fill what one
	// delivery can commit. RFC 5321 §4.5.3.1.10 (452: send the rest in a
	// later transaction), RFC 3463 X.5.3.
	return reply(452, 4, 5, 3, "too many mailboxes and forward targets in this transaction, send this recipient in another")
}

func replyTooManyExpansions() *smtp.SMTPError {
	// The RCPTs so far have read as many directory records, expanding
	// forwards, as one transaction may (node.MaxExpansionReads). As
	// Postfix defers a message whose alias expansion passes its limit:
	// 452, and the client sends this recipient in a later transaction
	// (RFC 5321 §4.5.3.1.10), where it is expanded afresh.
	return reply(452, 4, 5, 3, "too many forward expansions in this transaction, send this recipient in another")
}

func replyBadRecipientSyntax(why string) *smtp.SMTPError {
	return reply(501, 5, 1, 3, "bad recipient address syntax: "+why)
}

func replyBadSenderSyntax(why string) *smtp.SMTPError {
	return reply(501, 5, 1, 7, "bad sender address syntax: "+why)
}

func replyBadDSNParameter(text string) *smtp.SMTPError {
	// RFC 3461 §4.2, §4.4: ORCPT and ENVID are bounded; RFC 3463 X.5.4.
	return reply(501, 5, 5, 4, text)
}

// Submission (RFC 4954 §6, RFC 6409).
func replyAuthRequired() *smtp.SMTPError {
	return reply(530, 5, 7, 0, "authentication required")
}

// replyPasswordChanged: the login's password was changed since AUTH.
// 530 5.7.0 as for any session without a login that holds (RFC 4954 §6);
// the text tells the user to authenticate again with the new password.
func replyPasswordChanged() *smtp.SMTPError {
	return reply(530, 5, 7, 0, "the password was changed since authentication; authenticate with the new one")
}

func replyAuthFailed() *smtp.SMTPError {
	return reply(535, 5, 7, 8, "authentication credentials invalid")
}

func replyEncryptionRequired() *smtp.SMTPError {
	return reply(538, 5, 7, 11, "encryption required for this authentication")
}

func replyAuthUnavailable() *smtp.SMTPError {
	return reply(454, 4, 7, 0, "temporary authentication failure")
}

func replyTooManyAuthFailures() *smtp.SMTPError {
	return reply(421, 4, 7, 0, "too many failed authentications; closing")
}

func replyMalformedAuth() *smtp.SMTPError {
	return reply(501, 5, 5, 2, "malformed authentication exchange")
}

func replySenderNotOwned(user string) *smtp.SMTPError {
	return reply(553, 5, 7, 1, "sender address not owned by "+user)
}

func replyNonASCIIAddress() *smtp.SMTPError {
	// RFC 6531 §3.5: non-ASCII address without the SMTPUTF8 parameter.
	return reply(553, 5, 6, 7, "non-ASCII address requires SMTPUTF8")
}

func replyBadSequence(text string) *smtp.SMTPError {
	return reply(503, 5, 5, 1, text)
}

func replyShuttingDown() *smtp.SMTPError {
	// RFC 5321 §3.8: 421 when the server must close the channel.
	return reply(421, 4, 3, 2, "shutting down, try again later")
}

// Message data outcomes.
func replyTooBig(max int64) *smtp.SMTPError {
	// RFC 1870 (fixed maximum exceeded) and RFC 3463 X.3.4.
	return reply(552, 5, 3, 4, fmt.Sprintf("message exceeds the fixed maximum size of %d octets", max))
}

func replyLineTooLong(max int) *smtp.SMTPError {
	// RFC 5321 §4.5.3.1.9 suggests "500 Line too long".
	return reply(500, 5, 5, 0, fmt.Sprintf("line longer than %d octets", max))
}

// replyBDATUnparsable answers a BDAT command line go-smtp cannot parse
// (RFC 3030 §2: BDAT SP chunk-size [SP end-marker]). The chunk that may
// follow has no known end, so the connection is closed after it
// (trackedConn.refuseBDAT); it is written to the wire as it is, since
// go-smtp never sees the line.
func replyBDATUnparsable() *smtp.SMTPError {
	return reply(501, 5, 5, 4, "Syntax: BDAT chunk-size [LAST], size below 2^32; closing connection")
}

// wireLine is r as one reply line.
func wireLine(r *smtp.SMTPError) string {
	c := r.EnhancedCode
	return fmt.Sprintf("%d %d.%d.%d %s\r\n", r.Code, c[0], c[1], c[2], r.Message)
}

// Submitted messages' header checks (author.go): the same message
// would be refused again, so they are permanent.
func replyHeaderTooBig(max int) *smtp.SMTPError {
	return reply(552, 5, 3, 4, fmt.Sprintf("header section exceeds %d octets", max))
}

func replyMalformedHeader() *smtp.SMTPError {
	return reply(550, 5, 6, 0, "malformed header section")
}

func replyNoAuthor() *smtp.SMTPError {
	return reply(550, 5, 6, 0, "message has no From: header field (RFC 5322 section 3.6)")
}

func replyAuthorNotOwned(user string) *smtp.SMTPError {
	return reply(550, 5, 7, 1, "From: or Sender: names an address not owned by "+user)
}

func replyTransferFailed() *smtp.SMTPError {
	// The client stalled, vanished or aborted the transfer (RFC 3463 X.4.2).
	return reply(451, 4, 4, 2, "message transfer failed, try again later")
}

// replyForDirectoryError maps a Resolve error, or one mailbox's rejection
// from Deliver, to its reply. Temporary causes are tested first: an error
// that wraps both a temporary and a permanent sentinel must not bounce.
// Anything unrecognised is temporary (Promise 2: never a 5xx that a retry
// could fix).
func replyForDirectoryError(err error) *smtp.SMTPError {
	switch {
	case errors.Is(err, node.ErrMailboxRemoving): // wraps ErrUnavailable
		return replyMailboxRemoving()
	case errors.Is(err, node.ErrExpansionLimit): // wraps ErrUnavailable
		return replyTooManyExpansions()
	case errors.Is(err, node.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled):
		return replyUnavailable()
	case errors.Is(err, node.ErrExternalTarget):
		return replyExternalTarget()
	case errors.Is(err, node.ErrOverQuota):
		return replyOverQuota()
	case errors.Is(err, node.ErrFolderFull):
		return replyFolderFull()
	case errors.Is(err, node.ErrUnknownRecipient):
		return replyUnknownRecipient()
	case errors.Is(err, node.ErrNotLocal):
		return replyRelayDenied()
	default:
		return replyInternal()
	}
}

// isTemporary reports whether r asks the client to retry.
func isTemporary(r *smtp.SMTPError) bool {
	return r.Code/100 == 4
}

// isDirectoryError reports whether err wraps one of the documented
// sentinels or a context error, rather than something unexpected.
func isDirectoryError(err error) bool {
	for _, target := range []error{
		node.ErrUnavailable, node.ErrExternalTarget, node.ErrOverQuota, node.ErrFolderFull,
		node.ErrUnknownRecipient, node.ErrNotLocal,
		context.DeadlineExceeded, context.Canceled,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
