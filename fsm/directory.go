package fsm

// Domain and mailbox commands.

// DomainAdd hosts a new domain.
type DomainAdd struct {
	Name string `json:"name"`
}

func (*DomainAdd) Type() CmdType { return CmdDomainAdd }

func (c *DomainAdd) apply(tx *txn) (any, error) {
	d, err := NormalizeDomain(c.Name)
	if err != nil {
		return nil, err
	}
	if on, err := gated13(tx); err != nil {
		return nil, err
	} else if on {
		if err := checkNewDomain(c.Name); err != nil {
			return nil, err
		}
	}
	if ok, err := tx.has(domainKey(d)); err != nil || ok {
		return nil, orExists(err, "domain %s already exists", d)
	}
	return nil, tx.put(domainKey(d), Domain{Name: d, CreatedIndex: tx.index})
}

// DomainRemove stops hosting a domain. It must have no mailboxes or
// forwards left: removing mail is an explicit, separate step.
type DomainRemove struct {
	Name string `json:"name"`
}

func (*DomainRemove) Type() CmdType { return CmdDomainRemove }

func (c *DomainRemove) apply(tx *txn) (any, error) {
	d, err := NormalizeDomain(c.Name)
	if err != nil {
		return nil, err
	}
	if ok, err := tx.has(domainKey(d)); err != nil || !ok {
		return nil, orNotFound(err, "domain %s does not exist", d)
	}
	for _, left := range []struct {
		kind   string
		prefix []byte
	}{{"mailbox", mailboxPrefix(d)}, {"forward", forwardPrefix(d)}} {
		local, busy, err := firstUnder(tx.b, left.prefix)
		if err != nil || busy {
			return nil, orErr(err, ErrNotEmpty, "domain %s still has mailboxes or forwards, %s %s@%s among them: remove them first",
				d, left.kind, local, d)
		}
	}
	return nil, tx.del(domainKey(d))
}

// NewMailbox describes one mailbox to create.
type NewMailbox struct {
	Address      string `json:"address"`
	PasswordHash string `json:"password_hash,omitempty"`
	QuotaBytes   int64  `json:"quota_bytes,omitempty"`
}

// MailboxAdd creates one or more mailboxes atomically: if any of them is
// invalid, none is created and the error names the first bad one.
type MailboxAdd struct {
	Mailboxes []NewMailbox `json:"mailboxes"`
	// Distinct gives each new folder a UIDVALIDITY of its own
	// (uidvalidity.go).
	Distinct bool `json:"distinct_uidvalidity,omitempty"`
}

func (*MailboxAdd) Type() CmdType { return CmdMailboxAdd }

func (c *MailboxAdd) needsJSON4() bool { return c.Distinct }

// MaxMailboxBatch bounds one MailboxAdd, keeping raft entries small.
const MaxMailboxBatch = 10000

func (c *MailboxAdd) apply(tx *txn) (any, error) {
	if len(c.Mailboxes) == 0 || len(c.Mailboxes) > MaxMailboxBatch {
		return nil, errorf(ErrInvalid, "a batch holds 1 to %d mailboxes, not %d", MaxMailboxBatch, len(c.Mailboxes))
	}
	addrs := make([]Address, len(c.Mailboxes))
	seen := make(map[string]bool, len(c.Mailboxes))
	domains := map[string]bool{}
	for i, m := range c.Mailboxes {
		a, err := c.check(tx, m, domains)
		if err != nil {
			return nil, err
		}
		if seen[a.Key()] {
			return nil, errorf(ErrExists, "mailbox %s appears twice in the batch", a)
		}
		seen[a.Key()] = true
		addrs[i] = a
	}
	for i, m := range c.Mailboxes {
		if err := createMailbox(tx, addrs[i], m, c.Distinct); err != nil {
			return nil, err
		}
	}
	return len(addrs), nil
}

func (c *MailboxAdd) check(tx *txn, m NewMailbox, domains map[string]bool) (Address, error) {
	a, err := ParseAddress(m.Address)
	if err != nil {
		return a, err
	}
	if a, err = newName(tx, m.Address, a); err != nil {
		return a, err
	}
	if err := admitStored(m.PasswordHash); err != nil {
		return a, errorf(ErrInvalid, "mailbox %s: %s", a, err.Error())
	}
	if m.QuotaBytes < 0 {
		return a, errorf(ErrInvalid, "mailbox %s: negative quota", a)
	}
	if !domains[a.Domain] {
		if ok, err := tx.has(domainKey(a.Domain)); err != nil || !ok {
			return a, orNotFound(err, "mailbox %s: domain %s does not exist", a, a.Domain)
		}
		domains[a.Domain] = true
	}
	if ok, err := tx.has(mailboxKey(a)); err != nil || ok {
		return a, orExists(err, "mailbox %s already exists", a)
	}
	return a, nil
}

func createMailbox(tx *txn, a Address, m NewMailbox, distinct bool) error {
	hasForward, err := tx.has(forwardKey(a))
	if err != nil {
		return err
	}
	mb := Mailbox{
		Address:      a.String(),
		PasswordHash: m.PasswordHash,
		QuotaBytes:   m.QuotaBytes,
		HasForward:   hasForward,
		CreatedIndex: tx.index,
	}
	for _, f := range defaultFolders {
		validity, err := folderValidity(tx, distinct)
		if err != nil {
			return err
		}
		mb.NextFolderID++
		folder := Folder{
			Name:        f.name,
			ID:          mb.NextFolderID,
			UIDValidity: validity,
			UIDNext:     1,
			SpecialUse:  f.use,
			Subscribed:  true,
		}
		if err := tx.put(folderKey(a, f.name), folder); err != nil {
			return err
		}
	}
	mb.NextFolderID++
	if err := setPassword(tx, a, m.PasswordHash); err != nil {
		return err
	}
	return tx.put(mailboxKey(a), mb)
}

// setPassword stores (or, for "", deletes) a mailbox's password hash.
func setPassword(tx *txn, a Address, hash string) error {
	if hash == "" {
		return tx.del(passwordKey(a))
	}
	return tx.b.Set(passwordKey(a), []byte(hash), nil)
}

// uidValidity derives a folder's UIDVALIDITY from the raft index that
// created it: deterministic on every replica, different for a folder that
// is deleted and created again, and never zero (RFC 9051 §2.3.1.1).
func uidValidity(index uint64) uint32 {
	v := uint32(index)
	if v == 0 {
		v = 1
	}
	return v
}

// MailboxRemove deletes a mailbox and its folders.
type MailboxRemove struct {
	Address string `json:"address"`
}

func (*MailboxRemove) Type() CmdType { return CmdMailboxRemove }

func (c *MailboxRemove) apply(tx *txn) (any, error) {
	a, err := ParseAddress(c.Address)
	if err != nil {
		return nil, err
	}
	if ok, err := tx.has(mailboxKey(a)); err != nil || !ok {
		return nil, orNotFound(err, "mailbox %s does not exist", a)
	}
	var fw Forward
	if ok, err := tx.get(forwardKey(a), &fw); err != nil || (ok && fw.KeepCopy) {
		return nil, orErr(err, ErrNotEmpty, "mailbox %s: a forward keeps copies in it; remove the forward first", a)
	}
	if err := dropMessages(tx, a); err != nil {
		return nil, err
	}
	if err := tx.delPrefix(folderPrefix(a)); err != nil {
		return nil, err
	}
	if err := tx.del(passwordKey(a)); err != nil {
		return nil, err
	}
	if err := tx.del(lockKey(a)); err != nil {
		return nil, err
	}
	// The holds on its mark (from encoding 12; none below it, so
	// nothing is written there).
	if err := delRemovalHolds(tx, a); err != nil {
		return nil, err
	}
	return nil, tx.del(mailboxKey(a))
}

// MailboxUpdate changes a mailbox's password, quota or enabled state.
// Nil fields are left as they are.
type MailboxUpdate struct {
	Address      string  `json:"address"`
	PasswordHash *string `json:"password_hash,omitempty"`
	QuotaBytes   *int64  `json:"quota_bytes,omitempty"`
	Disabled     *bool   `json:"disabled,omitempty"`
	// Removing sets or clears the mark of a mailbox being removed
	// (Mailbox.Removing). Taken only from an entry written in
	// EncodingJSON10 or later: a release before it drops the field, so
	// an older entry that carried it anyway is applied as such a
	// release applies it.
	Removing *bool `json:"removing,omitempty"`
	// Remover names the removal that sets or releases its hold on the
	// mark, from command encoding 12 (removalholds.go): the mark stays
	// while any removal holds it. With Removing false and no Remover
	// the whole mark is cleared, as below 12; from command encoding 14
	// only the hold of no known owner is. Taken only with Removing,
	// from an entry written in EncodingJSON12 or later, at most
	// MaxRemoverLen bytes.
	Remover string `json:"remover,omitempty"`

	written byte // the entry's encoding (parse)
}

func (*MailboxUpdate) Type() CmdType { return CmdMailboxUpdate }

// needsEncoding: a release before EncodingJSON10 would drop Removing
// and go on delivering to a mailbox the others refuse; one before
// EncodingJSON12 would drop Remover and let one removal's failure clear
// the mark another holds.
func (c *MailboxUpdate) needsEncoding() int {
	if c.Removing != nil && c.Remover != "" {
		return EncodingJSON12
	}
	if c.Removing != nil {
		return EncodingJSON10
	}
	return 0
}

func (c *MailboxUpdate) setWritten(enc byte) { c.written = enc }

func (c *MailboxUpdate) apply(tx *txn) (any, error) {
	a, err := ParseAddress(c.Address)
	if err != nil {
		return nil, err
	}
	var mb Mailbox
	if ok, err := tx.get(mailboxKey(a), &mb); err != nil || !ok {
		return nil, orNotFound(err, "mailbox %s does not exist", a)
	}
	if err := c.check(a); err != nil {
		return nil, err
	}
	if c.PasswordHash != nil {
		if err := setPassword(tx, a, *c.PasswordHash); err != nil {
			return nil, err
		}
	}
	if c.QuotaBytes != nil {
		mb.QuotaBytes = *c.QuotaBytes
	}
	if c.Disabled != nil {
		mb.Disabled = *c.Disabled
	}
	if err := c.applyRemoving(tx, a, &mb); err != nil {
		return nil, err
	}
	return nil, tx.put(mailboxKey(a), mb)
}

// applyRemoving sets or clears the mark: as one bit below command
// encoding 12, by the removals' holds from it (removalholds.go).
func (c *MailboxUpdate) applyRemoving(tx *txn, a Address, mb *Mailbox) error {
	if c.Removing == nil || c.written < EncodingJSON10 {
		return nil
	}
	held, err := gated12(tx)
	if err != nil {
		return err
	}
	if !held {
		mb.Removing = *c.Removing
		return nil
	}
	return c.applyHolds(tx, a, mb)
}

// beingRemoved refuses mail for a mailbox marked Removing.
func beingRemoved(a Address) error {
	return errorf(ErrBeingRemoved, "mailbox %s is being removed", a)
}

// check validates every field before apply writes any: a refused update
// must leave nothing behind in the batch (a new password with a refused
// quota was stored).
func (c *MailboxUpdate) check(a Address) error {
	if c.PasswordHash != nil {
		if err := admitStored(*c.PasswordHash); err != nil {
			return errorf(ErrInvalid, "mailbox %s: %s", a, err.Error())
		}
	}
	if c.QuotaBytes != nil && *c.QuotaBytes < 0 {
		return errorf(ErrInvalid, "mailbox %s: negative quota", a)
	}
	if c.Removing != nil {
		return c.checkRemover(a)
	}
	return nil
}

// orExists turns a storage error into itself, and nil into ErrExists.
func orExists(err error, format string, args ...any) error {
	return orErr(err, ErrExists, format, args...)
}

func orNotFound(err error, format string, args ...any) error {
	return orErr(err, ErrNotFound, format, args...)
}

func orErr(err, kind error, format string, args ...any) error {
	if err != nil {
		return err
	}
	return errorf(kind, format, args...)
}
