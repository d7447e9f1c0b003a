package fsm

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every business error returned by Apply or a query wraps
// exactly one of them, so callers (and the wire codec in package node) can
// classify it with errors.Is.
var (
	ErrInvalid     = errors.New("invalid input")
	ErrExists      = errors.New("already exists")
	ErrNotFound    = errors.New("not found")
	ErrNotEmpty    = errors.New("not empty")
	ErrForwardLoop = errors.New("forward loop")
	ErrNotLocal    = errors.New("domain not hosted")
	ErrClosed      = errors.New("state closed")
	ErrNoFolder    = errors.New("no such folder")
	ErrOverQuota   = errors.New("over quota")
	ErrLocked      = errors.New("locked")
	// ErrFolderChanged: a FolderCheck failed; the folder under the name
	// is not the one the command's UIDs came from (foldercheck.go). It
	// does not wrap ErrNoFolder, so that a wire code names one kind.
	ErrFolderChanged = errors.New("folder changed")
	// ErrBeingRemoved: the mailbox is marked as being removed
	// (Mailbox.Removing); mail for it is refused until the removal ends
	// (then it does not exist) or is undone. Temporary to a sender.
	ErrBeingRemoved = errors.New("mailbox being removed")
	// ErrFolderFull: the folder has given its last UID (2^32-2; RFC 9051
	// §2.3.1.1), so it takes no new message (uidlimit.go). Expunging
	// does not help: UIDs are never given again.
	ErrFolderFull = errors.New("folder full")
	// ErrDeleteCondition: a FolderDelete's condition (FolderDeleteIf)
	// does not hold: the folder under the name is another, or has got
	// a message or a child since it was checked. Nothing was deleted.
	ErrDeleteCondition = errors.New("folder delete condition not met")
)

// codes pairs each wire code with its kind, in a fixed order: Code
// returns the first kind an error matches, and its answer is stored in
// a delivery's remembered result, so it must not depend on a map's
// iteration order.
var codes = []struct {
	code string
	kind error
}{
	{"invalid", ErrInvalid},
	{"exists", ErrExists},
	{"not_found", ErrNotFound},
	{"not_empty", ErrNotEmpty},
	{"forward_loop", ErrForwardLoop},
	{"not_local", ErrNotLocal},
	{"no_folder", ErrNoFolder},
	{"over_quota", ErrOverQuota},
	{"locked", ErrLocked},
	{"folder_changed", ErrFolderChanged},
	{"being_removed", ErrBeingRemoved},
	{"folder_full", ErrFolderFull},
	{"delete_condition", ErrDeleteCondition},
}

// Error is a business error with a human-readable message and a sentinel
// kind. It survives a trip over the wire through Code and FromCode.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Code returns the stable wire code of err's kind, or "" if err is not a
// business error of this package.
func Code(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.kind) {
			return c.code
		}
	}
	return ""
}

// FromCode rebuilds a business error from its wire code and message. An
// unknown code yields a plain error carrying the message.
func FromCode(code, msg string) error {
	for _, c := range codes {
		if c.code == code {
			return &Error{Kind: c.kind, Msg: msg}
		}
	}
	return errors.New(msg)
}
