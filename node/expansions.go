package node

import (
	"context"
	"fmt"

	"powermail/fsm"
)

// ErrExpansionLimit: the transaction's recipient lookups have read as
// many directory records as one transaction may (MaxExpansionReads);
// the RCPT is deferred to another transaction (452 4.5.3). It wraps
// ErrUnavailable, so a caller that does not know it still takes it as
// temporary.
var ErrExpansionLimit = fmt.Errorf("%w: transaction's forward expansions used up", ErrUnavailable)

// MaxExpansionReads bounds the directory records the recipient lookups
// of one transaction read: ten times what reaching the most mailboxes
// one delivery may name (MaxMessageMailboxes) takes, one read each. A
// lookup that begins under it runs to its end; once it is passed, every
// further RCPT of the transaction is deferred (ErrExpansionLimit), as
// Postfix defers a message whose alias expansion passes
// virtual_alias_expansion_limit. With Expansions each forward an RCPT
// lands on is expanded once per transaction, so an ordinary transaction (1,000
// RCPTs of single mailboxes, or of lists) stays far below it.
const MaxExpansionReads = 10 * MaxMessageMailboxes

// Expansions are the forward expansions one mail transaction's RCPTs
// share (fsm.ExpansionMemo): the forward one RCPT landed on is not
// expanded again by the next, whatever spelling reaches it. A
// transaction makes one at MAIL and passes it to Resolve with
// WithExpansions; it ends with the transaction.
type Expansions struct {
	memo *fsm.ExpansionMemo
	// limit is MaxExpansionReads (tests set less).
	limit int
}

// NewExpansions returns the expansions of a new transaction.
func NewExpansions() *Expansions {
	return &Expansions{memo: fsm.NewExpansionMemo(), limit: MaxExpansionReads}
}

// Reads is how many directory records (exact lookups) the
// transaction's lookups have read (0 for nil).
func (e *Expansions) Reads() int {
	if e == nil {
		return 0
	}
	return e.memo.Reads()
}

// Exhausted reports whether the transaction's lookups have read
// MaxExpansionReads records: its further RCPTs are deferred.
func (e *Expansions) Exhausted() bool { return e != nil && e.Reads() >= e.limit }

type expansionsKey struct{}

// WithExpansions returns ctx carrying e, for Resolve.
func WithExpansions(ctx context.Context, e *Expansions) context.Context {
	return context.WithValue(ctx, expansionsKey{}, e)
}

// expansionUse is how one lookup uses a transaction's expansions: none
// (nil: a lookup of its own), or with confirm after a read barrier
// (fsm.State.ResolveIn).
type expansionUse struct {
	*Expansions
	confirm bool
}

// expansionsOf returns the use of ctx's expansions for a lookup.
func expansionsOf(ctx context.Context) expansionUse {
	e, _ := ctx.Value(expansionsKey{}).(*Expansions)
	return expansionUse{Expansions: e}
}

// exhausted reports whether the transaction's lookups have read
// their limit: Resolve defers the RCPT (ErrExpansionLimit).
func (u expansionUse) exhausted() bool { return u.Expansions.Exhausted() }

// lookupMemo is the memo the lookup uses, nil for none.
func (u expansionUse) lookupMemo() *fsm.ExpansionMemo {
	if u.Expansions == nil {
		return nil
	}
	return u.Expansions.memo
}

// confirming is u for a lookup after a read barrier.
func (u expansionUse) confirming() expansionUse {
	u.confirm = true
	return u
}
