package frontend

import (
	"context"
	"errors"

	"github.com/emersion/go-imap/v2"

	"powermail/node"
)

// Response codes go-imap has no constant for.
const (
	imapCodeExpungeIssued imap.ResponseCode = "EXPUNGEISSUED" // RFC 9051 section 7.1
	imapCodeUseAttr       imap.ResponseCode = "USEATTR"       // RFC 6154 section 6
)

func imapNo(code imap.ResponseCode, text string) *imap.Error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
}

func imapBad(text string) *imap.Error {
	return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: text}
}

var (
	errIMAPNoneSelected = imapBad("No mailbox selected")
	errIMAPNotAuthed    = imapBad("Not authenticated")
	errIMAPReadOnly     = imapNo(imap.ResponseCodeCannot, "Mailbox is read-only (EXAMINE)")
	errIMAPTooManyFlags = imapNo(imap.ResponseCodeCannot, "Not allowed: invalid or too many flags")
)

// imapStoreError turns a MailStore error into the reply the client gets.
// missing is the code for node.ErrNoFolder: NONEXISTENT for a folder the
// command works on, TRYCREATE for the target of APPEND, COPY and MOVE (RFC
// 9051 section 7.1). Every session method returns nil, a write error, or
// an *imap.Error built here: any other error would reach the client as NO
// [SERVERBUG].
//
// The node's messages are not passed on: they can name internals. The
// client learns the class of failure; the log gets the detail.
func (s *imapSession) storeError(op string, err error, missing imap.ResponseCode) error {
	var ie *imap.Error
	switch {
	case errors.As(err, &ie):
		return ie
	// Temporary first: an error that wraps a temporary and a permanent
	// sentinel is retried, as with SMTP.
	case errors.Is(err, node.ErrMailboxRemoving): // wraps ErrUnavailable
		s.log.Info("imap: mailbox being removed", "op", op, "err", err)
		return imapNo(imap.ResponseCodeUnavailable, "Mailbox is being removed")
	case errors.Is(err, node.ErrInsufficientStorage):
		// RFC 9051 has no code for a full disk. UNAVAILABLE (RFC 5530
		// section 3) is temporary, so the client keeps the message and
		// tries again; OVERQUOTA would send the user to delete mail
		// that is not the problem. The text tells the two apart.
		s.log.Warn("imap: server storage full", "op", op, "err", err)
		return imapNo(imap.ResponseCodeUnavailable, "Server storage is full, try again later")
	case errors.Is(err, node.ErrUnavailable), errors.Is(err, node.ErrBodyUnavailable),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		s.log.Info("imap: backend unavailable", "op", op, "err", err)
		return imapNo(imap.ResponseCodeUnavailable, "Temporarily unavailable, try again")
	case errors.Is(err, node.ErrNoFolder):
		return imapNo(missing, "No such mailbox")
	case errors.Is(err, node.ErrFolderExists):
		return imapNo(imap.ResponseCodeAlreadyExists, "Mailbox already exists")
	case errors.Is(err, node.ErrOverQuota):
		return imapNo(imap.ResponseCodeOverQuota, "Over quota")
	case errors.Is(err, node.ErrFolderFull):
		// RFC 9051 §7.1: LIMIT, a server limit the client cannot lift
		// by waiting; the folder has given its last UID.
		return imapNo(imap.ResponseCodeLimit, "Mailbox has used all its UIDs")
	case errors.Is(err, node.ErrInvalidArgument):
		s.log.Debug("imap: refused", "op", op, "err", err)
		return imapNo(imap.ResponseCodeCannot, "Not allowed: "+imapRefusal(op))
	case errors.Is(err, node.ErrLocked):
		return imapNo(imap.ResponseCodeInUse, "Mailbox in use by another session")
	case errors.Is(err, node.ErrAuthFailed):
		// The mailbox itself is gone (deleted or disabled mid-session).
		s.log.Info("imap: mailbox no longer available", "op", op, "err", err)
		return imapNo(imap.ResponseCodeNoPerm, "Mailbox no longer available")
	default:
		s.log.Error("imap: unexpected backend error", "op", op, "err", err)
		return imapNo(imap.ResponseCodeUnavailable, "Temporarily unavailable, try again")
	}
}

// imapRefusal names what a command tried, for the text of a CANNOT reply.
func imapRefusal(op string) string {
	switch op {
	case "create", "rename":
		return "invalid mailbox name or special use"
	case "delete":
		return "this mailbox cannot be deleted"
	case "store", "append":
		return "invalid or too many flags"
	default:
		return op + " refused"
	}
}
