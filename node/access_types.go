package node

import (
	"errors"
	"fmt"
	"io"

	"powermail/fsm"
)

// Mail access errors (IMAP, POP3, authentication), returned wrapped by the
// access methods of Node. The frontend maps each to a protocol reply.
var (
	// ErrAuthFailed: unknown user, wrong password or disabled mailbox. The
	// three are indistinguishable on purpose.
	ErrAuthFailed = errors.New("authentication failed")
	// ErrPasswordChanged wraps ErrAuthFailed: the mailbox's password was
	// changed since a login, which no longer holds (AccountActive).
	ErrPasswordChanged = fmt.Errorf("%w: the password was changed since the login", ErrAuthFailed)
	// ErrNoFolder: the folder does not exist (IMAP [TRYCREATE]/[NONEXISTENT]).
	ErrNoFolder = errors.New("no such folder")
	// ErrFolderChanged: the folder a session's UIDs came from is no longer
	// under its name (a FolderCheck failed). Errors that wrap it also
	// wrap ErrNoFolder: the selected folder is gone either way.
	ErrFolderChanged = errors.New("the selected folder was replaced")
	// ErrFolderExists: CREATE or RENAME onto an existing folder.
	ErrFolderExists = errors.New("folder already exists")
	// ErrInvalidArgument: a name or argument the directory refuses (bad
	// folder name, renaming INBOX's special use away, ...). Retrying the
	// same request can never help.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrLocked: another session holds the POP3 maildrop lock.
	ErrLocked = errors.New("maildrop locked by another session")
	// ErrDeleteCondition: DeleteFolderIf found the folder no longer as
	// its caller checked it (another folder under the name, a message or
	// a folder below it since) and kept it; nothing changed.
	ErrDeleteCondition = errors.New("folder kept: no longer as checked")
)

// Folder is one IMAP folder of a mailbox, as the directory records it.
type Folder = fsm.Folder

// StoredMessage is one message of a folder: UID, body hash, size,
// internal date (unix ms) and flags (sorted, without \Recent).
type StoredMessage = fsm.Message

// FolderView is a consistent snapshot of one folder: its record and all
// its messages in UID order, read at one applied index. Messages may be
// shared with other sessions and must not be modified.
type FolderView struct {
	Folder   Folder
	Messages []StoredMessage
}

// FolderCheck names the folder, by ID and UIDVALIDITY, that a session
// took UIDs from; StoreFlags, Expunge and Copy given one refuse
// (fsm.ErrNoFolder) a folder that has since taken its name.
type FolderCheck = fsm.FolderCheck

// FolderDeleteIf is the condition under which DeleteFolderIf deletes a
// folder: the one checked (ID, UIDVALIDITY), its UIDNEXT unchanged when
// given, and, as asked, holding no message and no folder below it.
type FolderDeleteIf = fsm.FolderDeleteIf

// FlagOp says how StoreFlags combines the given flags with a message's.
type FlagOp = fsm.FlagOp

// Flag operations (IMAP STORE FLAGS, +FLAGS, -FLAGS).
const (
	FlagsSet    = fsm.FlagsSet
	FlagsAdd    = fsm.FlagsAdd
	FlagsRemove = fsm.FlagsRemove
)

// MaxFolderName is the longest folder name, in octets, the state
// machine takes (ErrInvalidArgument beyond).
const MaxFolderName = fsm.MaxFolderName

// MaxFolders is the most folders a mailbox holds, INBOX included.
const MaxFolders = fsm.MaxFolders

// MaxMessageFlags is the most flags one message holds, and one StoreFlags
// or Append names (the state machine refuses more, ErrInvalidArgument).
const MaxMessageFlags = fsm.MaxFlags

// AppendResult names the message an APPEND created (RFC 4315 APPENDUID).
type AppendResult struct {
	UIDValidity uint32
	UID         uint32
}

// CopyResult pairs source and destination UIDs (RFC 4315 COPYUID), in
// the same order.
type CopyResult struct {
	UIDValidity uint32
	SrcUIDs     []uint32
	DstUIDs     []uint32
}

// Body is an open message body: seekable, sized, verified chunk by chunk
// as it is read.
type Body interface {
	io.ReadSeekCloser
	Size() int64
}
