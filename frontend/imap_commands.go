package frontend

import (
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// imapCommands is the Session imapserver drives: imapSession, plus the
// bookkeeping that lets Poll tell a bare NOOP or CHECK from the poll that
// follows another command.
//
// imapserver calls Poll only after a command that succeeded, and not at
// all after SELECT and EXAMINE (it writes their OK itself). Every command
// that reaches a Session method counts itself (imapSession.calls), and
// Poll takes "no command since my last poll" to mean that the poll is the
// whole command. A command that ended without a poll would break that:
// the NOOP after it would look like the poll of that command, swallow a
// failed read and answer OK from a stale snapshot (jepsen/RESULTS.md, bug
// 4). So every command that ends without a poll is settled here.
type imapCommands struct{ *imapSession }

var (
	_ imapserver.SessionIMAP4rev2   = imapCommands{}
	_ imapserver.SessionAppendLimit = imapCommands{}
)

// end settles a command that failed: imapserver answers NO or BAD and
// does not poll.
func (c imapCommands) end(err error) error {
	if err != nil {
		c.settle()
	}
	return err
}

func (s *imapSession) settle() {
	s.mu.Lock()
	s.polledAt = s.calls
	s.mu.Unlock()
}

func (c imapCommands) Select(name string, o *imap.SelectOptions) (*imap.SelectData, error) {
	d, err := c.imapSession.Select(name, o)
	c.settle() // never followed by a poll, success or not
	return d, err
}

func (c imapCommands) Create(name string, o *imap.CreateOptions) error {
	return c.end(c.imapSession.Create(name, o))
}

func (c imapCommands) Delete(name string) error { return c.end(c.imapSession.Delete(name)) }

func (c imapCommands) Rename(from, to string, o *imap.RenameOptions) error {
	return c.end(c.imapSession.Rename(from, to, o))
}

func (c imapCommands) Subscribe(name string) error { return c.end(c.imapSession.Subscribe(name)) }

func (c imapCommands) Unsubscribe(name string) error { return c.end(c.imapSession.Unsubscribe(name)) }

func (c imapCommands) List(w *imapserver.ListWriter, ref string, patterns []string, o *imap.ListOptions) error {
	return c.end(c.imapSession.List(w, ref, patterns, o))
}

func (c imapCommands) Status(name string, o *imap.StatusOptions) (*imap.StatusData, error) {
	d, err := c.imapSession.Status(name, o)
	return d, c.end(err)
}

func (c imapCommands) Append(name string, r imap.LiteralReader, o *imap.AppendOptions) (*imap.AppendData, error) {
	d, err := c.imapSession.Append(name, r, o)
	return d, c.end(err)
}

func (c imapCommands) Namespace() (*imap.NamespaceData, error) {
	d, err := c.imapSession.Namespace()
	return d, c.end(err)
}

func (c imapCommands) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	return c.end(c.imapSession.Expunge(w, uids))
}

func (c imapCommands) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, o *imap.SearchOptions) (*imap.SearchData, error) {
	d, err := c.imapSession.Search(kind, criteria, o)
	return d, c.end(err)
}

func (c imapCommands) Fetch(w *imapserver.FetchWriter, set imap.NumSet, o *imap.FetchOptions) error {
	return c.end(c.imapSession.Fetch(w, set, o))
}

func (c imapCommands) Store(w *imapserver.FetchWriter, set imap.NumSet, flags *imap.StoreFlags, o *imap.StoreOptions) error {
	return c.end(c.imapSession.Store(w, set, flags, o))
}

func (c imapCommands) Copy(set imap.NumSet, dest string) (*imap.CopyData, error) {
	d, err := c.imapSession.Copy(set, dest)
	return d, c.end(err)
}

func (c imapCommands) Move(w *imapserver.MoveWriter, set imap.NumSet, dest string) error {
	return c.end(c.imapSession.Move(w, set, dest))
}
