package frontend

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"powermail/node"
)

// Store changes flags (RFC 9051 section 6.4.6) and, unless .SILENT,
// answers with the new flags of every message in the set. The snapshot
// takes the new flags at once, so the next poll does not repeat them.
func (s *imapSession) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sel, addr, err := s.selected()
	if err != nil {
		return err
	}
	if sel.readOnly {
		return errIMAPReadOnly
	}
	idx, err := sel.resolve(numSet, true)
	if err != nil || len(idx) == 0 {
		return err
	}
	var op node.FlagOp
	switch flags.Op {
	case imap.StoreFlagsSet:
		op = node.FlagsSet
	case imap.StoreFlagsAdd:
		op = node.FlagsAdd
	case imap.StoreFlagsDel:
		op = node.FlagsRemove
	default:
		return imapBad("Unknown STORE operation")
	}
	list, err := imapStoreFlagList(flags.Flags, sel)
	if err != nil {
		return err
	}
	if op == node.FlagsRemove {
		list = everySpelling(list, sel, idx)
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	changed, err := s.srv.store.StoreFlags(ctx, addr, sel.name, sel.uids(idx), op, list, sel.check())
	if err != nil {
		return s.storeError("store", err, imap.ResponseCodeNonExistent)
	}
	for _, c := range changed {
		i, ok := sel.index(c.UID)
		switch {
		case !ok:
		case flags.Silent:
			// The client takes its change as made and is told nothing:
			// what else the store holds (another session's change) is
			// news for the next poll to report (RFC 9051 §6.4.6).
			sel.msgs[i].flags = withFlagOp(sel.msgs[i].flags, op, list)
		default:
			sel.msgs[i].flags = slices.Clone(c.Flags)
		}
	}
	if flags.Silent {
		// RFC 2180 section 4.2: OK once every message still there
		// has the change; a vanished one needs no word here.
		return nil
	}
	s.markStoreVanished(addr, sel, idx, changed, op, list)
	issued := false
	for _, i := range idx {
		m := &sel.msgs[i]
		if m.gone {
			issued = true
			continue
		}
		rw := w.CreateMessage(uint32(i + 1))
		rw.WriteUID(imap.UID(m.uid))
		rw.WriteFlags(imapFlags(m.flags))
		if err := rw.Close(); err != nil {
			return err
		}
	}
	if issued {
		// RFC 2180 section 4.2: FETCH for the messages still there,
		// a tagged NO for the others; EXPUNGEISSUED (RFC 9051 section
		// 7.1) tells the client to poll, which reports the EXPUNGE.
		return imapNo(imapCodeExpungeIssued, "Some messages were expunged meanwhile")
	}
	return nil
}

// markStoreVanished marks gone the messages of a STORE that another
// session expunged before this one polled, so that the STORE does not
// answer with their old flags as if the change were made.
//
// The store skips a UID it does not hold and lists only the messages it
// changed, so a message missing from changed is either gone or already
// had the flags. The folder is read (once) only when that cannot be told
// without it: a message the snapshot says the change was for, or any,
// if the watch says something was applied since the last poll (the
// store returns once its command is applied here, so an expunge
// committed before it has been applied too). A STORE that changed every
// message it named, the common case, costs no read.
func (s *imapSession) markStoreVanished(addr string, sel *imapSelected, idx []int, changed []node.StoredMessage, op node.FlagOp, list []string) {
	select {
	case <-sel.watch:
		sel.dirty = true // the next poll reads what changed
	default:
	}
	done := make(map[uint32]bool, len(changed))
	for _, c := range changed {
		done[c.UID] = true
	}
	unchanged := func(m *imapMsg) bool { return !m.gone && !done[m.uid] }
	suspect := slices.ContainsFunc(idx, func(i int) bool {
		m := &sel.msgs[i]
		return unchanged(m) && (sel.dirty || !sameFlags(withFlagOp(m.flags, op, list), m.flags))
	})
	if !suspect {
		return
	}
	present := s.currentUIDs(addr, sel)
	if present == nil {
		return // cannot tell: the old flags, as before
	}
	for _, i := range idx {
		if m := &sel.msgs[i]; unchanged(m) && !present(m.uid) {
			m.gone = true
			sel.gone++
		}
	}
}

// everySpelling adds to a removal's keywords the other spellings of them
// that the target messages hold: the state machine tells keywords apart
// by case, this server does not, and two sessions can store "Work" and
// "work" before either sees the other's.
func everySpelling(list []string, sel *imapSelected, idx []int) []string {
	out := list
	for _, i := range idx {
		for _, f := range sel.msgs[i].flags {
			if !slices.Contains(out, f) && slices.ContainsFunc(list, func(k string) bool { return strings.EqualFold(k, f) }) {
				out = append(slices.Clip(out), f)
			}
		}
	}
	return out
}

// withFlagOp is flags after op with list, as a client expects it.
func withFlagOp(flags []string, op node.FlagOp, list []string) []string {
	switch op {
	case node.FlagsSet:
		return slices.Clone(list)
	case node.FlagsAdd:
		out := slices.Clone(flags)
		for _, f := range list {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
		return out
	}
	return slices.DeleteFunc(slices.Clone(flags), func(f string) bool { return slices.Contains(list, f) })
}
