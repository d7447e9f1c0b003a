package frontend

import (
	"context"
	"io"
	"time"

	"powermail/fsm"
	"powermail/node"
)

// MailStore is the narrow view of the cluster that IMAP and POP3 need.
// *node.Node implements it. Every read first waits for the node's read
// index (a session on any node sees every write acknowledged anywhere
// before the call began), and every write returns only once committed and
// applied on this node (a session sees its own writes at once).
//
// addr is always the canonical mailbox address returned by Authenticate.
// Errors wrap node.ErrAuthFailed, node.ErrNoFolder, node.ErrFolderExists,
// node.ErrInvalidArgument, node.ErrLocked, node.ErrOverQuota or
// node.ErrUnavailable (temporary: no leader, timeout); anything else is
// unexpected.
type MailStore interface {
	// Authenticate verifies a password against the replicated hash and
	// returns the login: the canonical mailbox address, and a
	// fingerprint of the credential used (node.Login).
	Authenticate(ctx context.Context, user, password string) (node.Login, error)

	// Folders lists every folder of the mailbox, sorted by name.
	Folders(ctx context.Context, addr string) ([]node.Folder, error)
	// Folder reads one folder record (cheap: use its ModSeq to tell
	// whether anything changed since a FolderView was taken).
	Folder(ctx context.Context, addr, name string) (node.Folder, error)
	// Usage reads the mailbox's storage use and quota.
	Usage(ctx context.Context, addr string) (node.Usage, error)
	// View reads a folder and all its messages at one index.
	View(ctx context.Context, addr, name string) (node.FolderView, error)

	CreateFolder(ctx context.Context, addr, name, specialUse string) error
	// DeleteFolder removes a folder and its messages (dropping their body
	// references). INBOX cannot be deleted.
	DeleteFolder(ctx context.Context, addr, name string) error
	// DeleteFolderIf deletes a folder the caller has just read and found
	// as cond asks (the one it made, empty, without a child), only if
	// it is still so: the undo of a folder a failed command made. A
	// folder no longer so is kept, with node.ErrDeleteCondition. A store
	// may delete without the condition when the cluster cannot yet
	// carry it (node.Node.DeleteFolderIf: the caller's read is then the
	// only check).
	DeleteFolderIf(ctx context.Context, addr, name string, cond node.FolderDeleteIf) error
	// RenameFolder renames a folder and its children ("a/b" when "a" is
	// renamed). Renaming INBOX moves its messages to the new folder and
	// leaves INBOX empty (RFC 9051 section 6.3.6).
	RenameFolder(ctx context.Context, addr, from, to string) error
	SubscribeFolder(ctx context.Context, addr, name string, subscribed bool) error

	// Append writes body to R replicas and commits it to the folder; it
	// returns only when durable. flags may be empty; date zero means now.
	Append(ctx context.Context, addr, folder string, flags []string, date time.Time, body io.Reader) (node.AppendResult, error)
	// StoreFlags changes the flags of the listed UIDs (missing ones are
	// ignored) and returns the messages it changed, with their new flags.
	// It need not be all or nothing: after an error some may have changed.
	StoreFlags(ctx context.Context, addr, folder string, uids []uint32, op node.FlagOp, flags []string, expect ...node.FolderCheck) ([]node.StoredMessage, error)
	// Expunge removes messages and drops their body references. With
	// onlyDeleted (IMAP) only messages flagged \Deleted are removed; uids
	// nil means all of them. POP3 passes its DELE'd UIDs and false. It
	// returns the removed UIDs, ascending.
	Expunge(ctx context.Context, addr, folder string, uids []uint32, onlyDeleted bool, expect ...node.FolderCheck) ([]uint32, error)
	// Copy references the same bodies from dst (no body is copied); with
	// move the sources are removed in the same commit (RFC 6851).
	//
	// Given expect, StoreFlags, Expunge and Copy act only if the folder
	// (the source of a copy) is still the one the UIDs came from, and fail
	// with node.ErrNoFolder otherwise: another folder that took its name
	// since must not lose or change messages with the same UIDs. A store
	// may ignore expect when the cluster cannot yet carry it.
	Copy(ctx context.Context, addr, src, dst string, uids []uint32, move bool, expect ...node.FolderCheck) (node.CopyResult, error)

	// OpenBody opens a message body from this node or, failing that, any
	// replica that holds an intact copy.
	OpenBody(ctx context.Context, hash string) (node.Body, error)

	// Watch returns a channel that receives (without blocking the sender;
	// it has a buffer of one) after any committed change to the mailbox's
	// folders or messages is applied on this node. Call stop when done.
	Watch(addr string) (changes <-chan struct{}, stop func())

	// LockMaildrop takes the cluster-wide POP3 lock on the mailbox for
	// holder. The lock is a lease kept alive while ctx lives; it lapses if
	// this node dies. Unlock releases it.
	LockMaildrop(ctx context.Context, addr, holder string) (unlock func(context.Context) error, err error)
	// POP3UIDLs returns the POP3 unique-ids kept from a previous server
	// for messages of the folder with ID folderID whose UIDs fall in uids,
	// by UID (a restore's, node/restoreuidl.go). It reads what the View
	// before it saw, without another read barrier; none is an empty map.
	POP3UIDLs(ctx context.Context, addr string, folderID uint64, uids fsm.UIDRange) (map[uint32]string, error)
}

// *node.Node is the production MailStore.
var _ MailStore = (*node.Node)(nil)
