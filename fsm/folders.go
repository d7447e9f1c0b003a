package fsm

import (
	"strings"
	"unicode/utf8"
)

// Folder names use "/" as the hierarchy delimiter (RFC 9051 section
// 5.1.1). A name is stored as the client sent it, except that INBOX is
// case-insensitive and always stored as "INBOX".

// Folder limits.
const (
	MaxFolderName = 512
	MaxFolders    = 10000
)

// CanonicalFolder returns name with INBOX in its canonical spelling.
func CanonicalFolder(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

// checkFolderName refuses names that IMAP cannot carry or that would make
// the hierarchy ambiguous: empty components, wildcards, controls.
func checkFolderName(name string) error {
	if name == "" || len(name) > MaxFolderName || !utf8.ValidString(name) {
		return errorf(ErrInvalid, "folder name %q is empty, too long or not UTF-8", name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" {
			return errorf(ErrInvalid, "folder name %q has an empty level", name)
		}
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '*' || r == '%' {
			return errorf(ErrInvalid, "folder name %q has a control or wildcard character", name)
		}
	}
	return nil
}

// FolderCreate creates a folder (IMAP CREATE). Missing parent levels are
// not created: LIST reports them as \NonExistent parents if needed.
type FolderCreate struct {
	Mailbox    string `json:"mailbox"`
	Name       string `json:"name"`
	SpecialUse string `json:"special_use,omitempty"`
	// Distinct gives the folder a UIDVALIDITY of its own (uidvalidity.go).
	Distinct bool `json:"distinct_uidvalidity,omitempty"`
}

func (*FolderCreate) Type() CmdType { return CmdFolderCreate }

func (c *FolderCreate) needsJSON4() bool { return c.Distinct }

var specialUses = map[string]bool{"": true, `\All`: true, `\Archive`: true, `\Drafts`: true,
	`\Flagged`: true, `\Junk`: true, `\Sent`: true, `\Trash`: true}

func (c *FolderCreate) apply(tx *txn) (any, error) {
	a, mb, err := loadMailbox(tx, c.Mailbox)
	if err != nil {
		return nil, err
	}
	name := CanonicalFolder(strings.TrimSuffix(c.Name, "/"))
	if err := checkFolderName(name); err != nil {
		return nil, err
	}
	if !specialUses[c.SpecialUse] {
		return nil, errorf(ErrInvalid, "special use %q is not one of RFC 6154's", c.SpecialUse)
	}
	if ok, err := tx.has(folderKey(a, name)); err != nil || ok {
		return nil, orExists(err, "folder %s already exists", name)
	}
	if full, err := folderLimitReached(tx, a, mb); err != nil || full {
		return nil, orErr(err, ErrInvalid, "mailbox %s has %d folders, the most allowed", a, MaxFolders)
	}
	f, err := newFolder(tx, &mb, name, c.SpecialUse, c.Distinct)
	if err != nil {
		return nil, err
	}
	if err := tx.put(folderKey(a, name), f); err != nil {
		return nil, err
	}
	tx.touch(a)
	return f, tx.put(mailboxKey(a), mb)
}

// folderLimitReached reports whether mailbox a, whose record is mb,
// has MaxFolders folders. Every folder record holds an ID of its own
// from 1 to mb.NextFolderID: only MailboxAdd and newFolder make folder
// records, each taking the next ID, a rename keeps the ID, and
// MailboxRemove deletes the folder records with the mailbox record. So
// while NextFolderID is below MaxFolders the count is too, and the
// count, a step per folder on every replica and a CREATE's whole cost
// in a mailbox of thousands of folders, is skipped: the answer is the
// same, so no command encoding gates it.
func folderLimitReached(tx *txn, a Address, mb Mailbox) (bool, error) {
	if mb.NextFolderID < MaxFolders {
		return false, nil
	}
	n, err := tx.count(folderPrefix(a), MaxFolders)
	return n >= MaxFolders, err
}

func newFolder(tx *txn, mb *Mailbox, name, use string, distinct bool) (Folder, error) {
	validity, err := folderValidity(tx, distinct)
	mb.NextFolderID++
	return Folder{Name: name, ID: mb.NextFolderID, UIDValidity: validity, UIDNext: 1,
		SpecialUse: use, Subscribed: true, ModSeq: tx.index}, err
}

// FolderDelete deletes a folder and its messages, releasing their body
// references. INBOX cannot be deleted. Children keep existing.
type FolderDelete struct {
	Mailbox string `json:"mailbox"`
	Name    string `json:"name"`
	// If, when set, deletes the folder only while it holds (ErrDeleteCondition
	// otherwise, and nothing changes): the check and the delete are one
	// entry (folderdelif.go). Taken only from an entry written in
	// EncodingJSON16 or later, which is how a command with it is written.
	If *FolderDeleteIf `json:"if,omitempty"`

	written byte // the entry's encoding (parse)
}

func (*FolderDelete) Type() CmdType { return CmdFolderDelete }

// needsEncoding: a release before EncodingJSON16 would drop If and
// delete the folder with whatever reached it, which the others keep.
func (c *FolderDelete) needsEncoding() int {
	if c.If != nil {
		return EncodingJSON16
	}
	return 0
}

func (c *FolderDelete) setWritten(enc byte) { c.written = enc }

func (c *FolderDelete) apply(tx *txn) (any, error) {
	a, mb, err := loadMailbox(tx, c.Mailbox)
	if err != nil {
		return nil, err
	}
	name := CanonicalFolder(c.Name)
	if name == "INBOX" {
		return nil, errorf(ErrInvalid, "INBOX cannot be deleted")
	}
	f, err := loadFolder(tx, a, name)
	if err != nil {
		return nil, err
	}
	if err := c.checkIf(tx, a, f); err != nil {
		return nil, err
	}
	msgs, err := folderMessages(tx, a, f, nil)
	if err != nil {
		return nil, err
	}
	if err := removeMessages(tx, a, &mb, &f, msgs); err != nil {
		return nil, err
	}
	tx.touch(a)
	if err := tx.del(folderKey(a, name)); err != nil {
		return nil, err
	}
	return nil, tx.put(mailboxKey(a), mb)
}

// FolderSubscribe sets a folder's subscription (IMAP SUBSCRIBE and
// UNSUBSCRIBE).
type FolderSubscribe struct {
	Mailbox    string `json:"mailbox"`
	Name       string `json:"name"`
	Subscribed bool   `json:"subscribed"`
}

func (*FolderSubscribe) Type() CmdType { return CmdFolderSubscribe }

func (c *FolderSubscribe) apply(tx *txn) (any, error) {
	a, _, err := loadMailbox(tx, c.Mailbox)
	if err != nil {
		return nil, err
	}
	f, err := loadFolder(tx, a, CanonicalFolder(c.Name))
	if err != nil {
		return nil, err
	}
	f.Subscribed = c.Subscribed
	return nil, tx.put(folderKey(a, f.Name), f)
}

func loadMailbox(tx *txn, addr string) (Address, Mailbox, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return a, Mailbox{}, err
	}
	var mb Mailbox
	if ok, err := tx.get(mailboxKey(a), &mb); err != nil || !ok {
		return a, mb, orNotFound(err, "mailbox %s does not exist", a)
	}
	return a, mb, nil
}

func loadFolder(tx *txn, a Address, name string) (Folder, error) {
	var f Folder
	if ok, err := tx.get(folderKey(a, name), &f); err != nil || !ok {
		return f, orErr(err, ErrNoFolder, "folder %s does not exist", name)
	}
	return f, nil
}
