package check

// msgKey names one message in one mailbox.
type msgKey struct{ mailbox, msgID string }

func (k msgKey) String() string { return k.mailbox + "/" + k.msgID }

// delivery summarises the attempts to put one message into one mailbox and
// the attempts to delete it from there. Failed attempts are ignored: they
// had no effect.
type delivery struct {
	tried       int     // delivery attempts, failed ones included
	attempts    int     // non-failed delivery attempts (OK, Info, pending)
	indefinite  bool    // some attempt has an unknown outcome
	firstInvoke int64   // earliest non-failed attempt invocation
	starts      []int64 // invocation times of the non-failed attempts
	lastEnd     int64   // latest OK attempt completion
	acked       bool
	ackAt       int64 // earliest OK completion
	ackOp       int   // index of that completion
	flags       []string

	deleting bool  // some non-failed delete was invoked
	delAt    int64 // earliest non-failed delete invocation
	delAcked bool
	delAckAt int64 // earliest OK delete completion
}

// attemptsBy counts the non-failed attempts invoked by t: no more copies
// than that can exist at t.
func (d *delivery) attemptsBy(t int64) int { return startedBy(d.starts, t) }

// startedBy counts the times in starts that are at or before t.
func startedBy(starts []int64, t int64) int {
	n := 0
	for _, s := range starts {
		if s <= t {
			n++
		}
	}
	return n
}

// mayBeDeletedBy reports whether a deletion could have taken effect by t.
func (d *delivery) mayBeDeletedBy(t int64) bool { return d.deleting && d.delAt <= t }

// indexDeliveries summarises every deliver, pop-dele and expunge call.
func indexDeliveries(calls []Call) map[msgKey]*delivery {
	ds := map[msgKey]*delivery{}
	get := func(k msgKey) *delivery {
		d := ds[k]
		if d == nil {
			d = &delivery{}
			ds[k] = d
		}
		return d
	}
	for _, c := range calls {
		switch c.Invoke.F {
		case FDeliver:
			for _, mb := range c.Invoke.Mailboxes() {
				get(msgKey{mb, c.Invoke.MsgID}).addAttempt(c)
			}
		case FPopDele, FExpunge:
			get(msgKey{c.Invoke.Key, c.Invoke.MsgID}).addDelete(c)
		}
	}
	return ds
}

func (d *delivery) addAttempt(c Call) {
	d.tried++
	if d.flags == nil && c.Invoke.Flags != nil {
		d.flags = c.Invoke.Flags
	}
	if c.Type() == Fail {
		return
	}
	if d.attempts == 0 || c.Start() < d.firstInvoke {
		d.firstInvoke = c.Start()
	}
	d.attempts++
	d.starts = append(d.starts, c.Start())
	if c.Type() != OK {
		d.indefinite = true
		return
	}
	d.lastEnd = max(d.lastEnd, c.End())
	if !d.acked || c.End() < d.ackAt {
		d.acked, d.ackAt, d.ackOp = true, c.End(), c.Complete.Index
	}
}

func (d *delivery) addDelete(c Call) {
	if c.Type() == Fail {
		return
	}
	if !d.deleting || c.Start() < d.delAt {
		d.deleting, d.delAt = true, c.Start()
	}
	if c.Type() == OK && (!d.delAcked || c.End() < d.delAckAt) {
		d.delAcked, d.delAckAt = true, c.End()
	}
}
