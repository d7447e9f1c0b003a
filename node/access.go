package node

import (
	"context"
	"errors"
	"io"
	"time"
)

var errNotYet = errors.New("not implemented yet")

// Authenticate verifies a password against the replicated hash.
func (n *Node) Authenticate(ctx context.Context, user, password string) (string, error) {
	return "", errNotYet
}

// Folders lists the folders of a mailbox after a read barrier.
func (n *Node) Folders(ctx context.Context, addr string) ([]Folder, error) { return nil, errNotYet }

// Folder reads one folder record after a read barrier.
func (n *Node) Folder(ctx context.Context, addr, name string) (Folder, error) {
	return Folder{}, errNotYet
}

// View reads a folder and its messages at one index.
func (n *Node) View(ctx context.Context, addr, name string) (FolderView, error) {
	return FolderView{}, errNotYet
}

// CreateFolder creates a folder.
func (n *Node) CreateFolder(ctx context.Context, addr, name, specialUse string) error {
	return errNotYet
}

// DeleteFolder deletes a folder and its messages.
func (n *Node) DeleteFolder(ctx context.Context, addr, name string) error { return errNotYet }

// RenameFolder renames a folder and its children.
func (n *Node) RenameFolder(ctx context.Context, addr, from, to string) error { return errNotYet }

// SubscribeFolder sets a folder's subscription.
func (n *Node) SubscribeFolder(ctx context.Context, addr, name string, subscribed bool) error {
	return errNotYet
}

// Append stores a body and commits it to a folder.
func (n *Node) Append(ctx context.Context, addr, folder string, flags []string, date time.Time, body io.Reader) (AppendResult, error) {
	return AppendResult{}, errNotYet
}

// StoreFlags changes message flags.
func (n *Node) StoreFlags(ctx context.Context, addr, folder string, uids []uint32, op FlagOp, flags []string) ([]StoredMessage, error) {
	return nil, errNotYet
}

// Expunge removes messages.
func (n *Node) Expunge(ctx context.Context, addr, folder string, uids []uint32, onlyDeleted bool) ([]uint32, error) {
	return nil, errNotYet
}

// Copy copies or moves messages between folders.
func (n *Node) Copy(ctx context.Context, addr, src, dst string, uids []uint32, move bool) (CopyResult, error) {
	return CopyResult{}, errNotYet
}

// Watch reports changes to a mailbox.
func (n *Node) Watch(addr string) (<-chan struct{}, func()) {
	return make(chan struct{}), func() {}
}

// LockMaildrop takes the POP3 lock.
func (n *Node) LockMaildrop(ctx context.Context, addr, holder string) (func(context.Context) error, error) {
	return nil, errNotYet
}
