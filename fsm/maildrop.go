package fsm

// POP3 maildrop locks (RFC 1939 section 8: a maildrop is locked for the
// whole session). A lock is a lease: the holder renews it, and a lock
// whose lease ran out (its node died) is free. Time comes from the
// proposer in the command, so every replica decides the same way.
//
//	"l\x00" domain "\x00" local   MaildropLock

// MaildropLock takes or renews the lock on a mailbox's maildrop.
type MaildropLock struct {
	Mailbox string `json:"mailbox"`
	Holder  string `json:"holder"`
	Now     int64  `json:"now"`     // unix ms at the proposer
	TTL     int64  `json:"ttl_ms"`  // lease length
	Release bool   `json:"release"` // drop the lock instead (only its holder can)
}

// Lock is the stored lease.
type Lock struct {
	Holder  string `json:"holder"`
	Expires int64  `json:"expires"` // unix ms
}

func (*MaildropLock) Type() CmdType { return CmdMaildropLock }

func lockKey(a Address) []byte { return []byte("l\x00" + addrPart(a)) }

func (c *MaildropLock) apply(tx *txn) (any, error) {
	a, _, err := loadMailbox(tx, c.Mailbox)
	if err != nil {
		return nil, err
	}
	if c.Holder == "" || c.TTL <= 0 {
		return nil, errorf(ErrInvalid, "maildrop lock without holder or lease")
	}
	var cur Lock
	held, err := tx.get(lockKey(a), &cur)
	if err != nil {
		return nil, err
	}
	if c.Release {
		if held && cur.Holder == c.Holder {
			return nil, tx.del(lockKey(a))
		}
		return nil, nil
	}
	if held && cur.Holder != c.Holder && cur.Expires > c.Now {
		return nil, errorf(ErrLocked, "maildrop %s is locked by another session", a)
	}
	return nil, tx.put(lockKey(a), Lock{Holder: c.Holder, Expires: c.Now + c.TTL})
}
