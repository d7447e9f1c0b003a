package fsm

import (
	"errors"
	"fmt"
)

// Forward commands and forward expansion.

// MaxForwardTargets bounds the targets of one forward.
const MaxForwardTargets = 100

// maxForwardDepth bounds recursive expansion of local forwards.
const maxForwardDepth = 10

// ForwardAdd creates a forward (or a catch-all, with Address "@domain").
// With Replace it also replaces an existing one, targets and KeepCopy, in
// one step: mail to the address is never refused in between, as it would
// be between a ForwardRemove and a ForwardAdd.
type ForwardAdd struct {
	Address  string   `json:"address"`
	Targets  []string `json:"targets"`
	KeepCopy bool     `json:"keep_copy,omitempty"`
	Replace  bool     `json:"replace,omitempty"`
	// Fallbacks makes the loop check count every address a target's
	// expansion looks up, found or not: the address asked for, its
	// sub-address base (RFC 5233) and the domain's catch-all. A forward
	// made at one of them later is taken at that lookup, so a forward at
	// Address back to a target that reached Address only through a
	// fallback (a -> ghost@y, caught by @y; then ghost@y -> a) loops. The
	// first rule counted only the addresses a lookup found, let such a
	// loop in, and every later delivery to either address was refused as
	// nested too deep.
	Fallbacks bool `json:"loop_fallbacks,omitempty"`
}

func (*ForwardAdd) Type() CmdType { return CmdForwardAdd }

// needsEncoding: a release before EncodingJSON6 would drop Replace and
// refuse the replacement as a duplicate, while the others apply it; one
// before EncodingJSON7 would drop Fallbacks and add a forward that the
// others refuse as a loop.
func (c *ForwardAdd) needsEncoding() int {
	if c.Fallbacks {
		return EncodingJSON7
	}
	if c.Replace {
		return EncodingJSON6
	}
	return 0
}

func (c *ForwardAdd) apply(tx *txn) (any, error) {
	src, err := ParseForwardSource(c.Address)
	if err != nil {
		return nil, err
	}
	if src, err = newName(tx, c.Address, src); err != nil {
		return nil, err
	}
	if len(c.Targets) == 0 || len(c.Targets) > MaxForwardTargets {
		return nil, errorf(ErrInvalid, "forward %s needs 1 to %d targets", src, MaxForwardTargets)
	}
	if ok, err := tx.has(domainKey(src.Domain)); err != nil || !ok {
		return nil, orNotFound(err, "forward %s: domain %s does not exist", src, src.Domain)
	}
	var old Forward
	exists, err := tx.get(forwardKey(src), &old)
	if err != nil || (exists && !c.Replace) {
		return nil, orExists(err, "forward %s already exists (replace it to change its targets)", src)
	}
	if c.KeepCopy {
		if src.Local == "" {
			return nil, errorf(ErrInvalid, "catch-all %s cannot keep a copy", src)
		}
		if ok, err := tx.has(mailboxKey(src)); err != nil || !ok {
			return nil, orNotFound(err, "forward %s keeps a copy, but mailbox %s does not exist", src, src)
		}
	}
	targets, err := c.checkTargets(tx, src)
	if err != nil {
		return nil, err
	}
	on, err := gated(tx)
	if err != nil {
		return nil, err
	}
	if on {
		if err := checkChainDepth(tx, src, targets); err != nil {
			return nil, err
		}
	}
	if err := markForward(tx, src, true); err != nil {
		return nil, err
	}
	created := tx.index
	if exists {
		created = old.CreatedIndex
	}
	if on {
		if err := reindexForward(tx, src, old.Targets, targets); err != nil {
			return nil, err
		}
	}
	return nil, tx.put(forwardKey(src), Forward{Address: src.String(), Targets: targets, KeepCopy: c.KeepCopy, CreatedIndex: created})
}

// reindexForward replaces the target index keys of the forward at src
// (forwardindex.go): those of its old targets (none for a new forward)
// go, those of the new ones come.
func reindexForward(tx *txn, src Address, old, targets []string) error {
	if err := indexTargets(tx, addrPart(src), old, true); err != nil {
		return err
	}
	return indexTargets(tx, addrPart(src), targets, false)
}

// markForward keeps Mailbox.HasForward in step with the forward at a.
func markForward(tx *txn, a Address, has bool) error {
	if a.Local == "" {
		return nil
	}
	var mb Mailbox
	ok, err := tx.get(mailboxKey(a), &mb)
	if err != nil || !ok {
		return err
	}
	mb.HasForward = has
	return tx.put(mailboxKey(a), mb)
}

func (c *ForwardAdd) checkTargets(tx *txn, src Address) ([]string, error) {
	out := make([]string, 0, len(c.Targets))
	seen := map[string]bool{}
	for _, t := range c.Targets {
		a, err := ParseAddress(t)
		if err != nil {
			return nil, err
		}
		local, err := tx.has(domainKey(a.Domain))
		if err != nil {
			return nil, err
		}
		if local {
			if a, err = localTarget(tx, a); err != nil {
				return nil, err
			}
		}
		if a.Key() == src.Key() {
			return nil, errorf(ErrForwardLoop, "forward %s points at itself", src)
		}
		if seen[a.Key()] {
			continue
		}
		seen[a.Key()] = true
		if local {
			if err := checkTarget(tx, src, a, c.Fallbacks); err != nil {
				return nil, err
			}
		}
		out = append(out, a.String())
	}
	return out, nil
}

// localTarget is the spelling a local target is stored in. From
// command encoding 13 a target is stored so that the forward reaches
// what RCPT of the same spelling reaches (State.Resolve), since a
// forward's targets are expanded as stored: RCPT looks the spelling up,
// then its NFC, then the sub-address base's spelling, then the base's
// NFC (resolution.expandSpelled). So a target named exactly, or whose
// NFC names nothing while its base is named exactly (a name stored
// before 13 in another form), keeps its spelling; any other is put in
// NFC, as new names are (localpart.go), so that a forward to
// "e\u0301@" reaches the mailbox "\u00e9@". Remote targets are kept
// as given: the host that owns them interprets their local parts (RFC
// 5321 §2.4).
func localTarget(tx *txn, a Address) (Address, error) {
	if nfcLocal(a.Local) == a.Local {
		return a, nil // nearly every target: no setting to read
	}
	if on, err := gated13(tx); err != nil || !on {
		return a, err
	}
	if found, err := namedExactly(tx, a); err != nil || found {
		return a, err
	}
	n, err := nfcAddress(a)
	if err != nil || n == a {
		return a, err
	}
	if found, err := namedExactly(tx, n); err != nil || found {
		return n, err
	}
	if base := subaddressBase(a.Local); base != "" {
		if found, err := namedExactly(tx, Address{Local: base, Domain: a.Domain}); err != nil || found {
			return a, err
		}
	}
	return n, nil
}

// checkTarget refuses a local target that does not resolve or whose
// expansion leads back to src (with fallbacks, also through a lookup of
// src that found nothing: ForwardAdd.Fallbacks). Only a business error of the expansion
// (an unknown address, nesting too deep) refuses the forward; a storage
// or decode error is returned as it is, so that apply stops this replica
// instead of rejecting a command the others accept.
func checkTarget(tx *txn, src, target Address, fallbacks bool) error {
	r, err := resolveTracking(tx.b, target, fallbacks)
	var be *Error
	if errors.As(err, &be) {
		return errorf(ErrNotFound, "forward %s: target %s: %s", src, target, err.Error())
	}
	if err != nil {
		return fmt.Errorf("forward %s: target %s: %w", src, target, err)
	}
	if r.reached(src.Key()) {
		return errorf(ErrForwardLoop, "forward %s -> %s leads back to %s", src, target, src)
	}
	return nil
}

// ForwardRemove deletes a forward.
type ForwardRemove struct {
	Address string `json:"address"`
}

func (*ForwardRemove) Type() CmdType { return CmdForwardRemove }

func (c *ForwardRemove) apply(tx *txn) (any, error) {
	src, err := ParseForwardSource(c.Address)
	if err != nil {
		return nil, err
	}
	if ok, err := tx.has(forwardKey(src)); err != nil || !ok {
		return nil, orNotFound(err, "forward %s does not exist", src)
	}
	if err := unindexForward(tx, src); err != nil {
		return nil, err
	}
	if err := markForward(tx, src, false); err != nil {
		return nil, err
	}
	return nil, tx.del(forwardKey(src))
}

// unindexForward deletes, from the gated encoding on, the target index
// keys of the forward at src, which is being removed.
func unindexForward(tx *txn, src Address) error {
	on, err := gated(tx)
	if err != nil || !on {
		return err
	}
	var old Forward
	if _, err := tx.get(forwardKey(src), &old); err != nil {
		return err
	}
	return indexTargets(tx, addrPart(src), old.Targets, true)
}
