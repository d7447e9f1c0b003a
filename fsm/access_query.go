package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Folder returns one folder of a mailbox (ErrNoFolder if missing).
func (s *State) Folder(addr, name string) (Folder, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return Folder{}, err
	}
	var f Folder
	err = s.view(func(r pebble.Reader) error {
		ok, err := getJSON(r, folderKey(a, CanonicalFolder(name)), &f)
		if err == nil && !ok {
			err = errorf(ErrNoFolder, "folder %s does not exist", name)
		}
		return err
	})
	return f, err
}

// View reads a folder and all its messages from one consistent snapshot,
// so the messages match the folder's counters and ModSeq.
func (s *State) View(addr, name string) (Folder, []Message, error) {
	return s.ViewReusing(addr, name, nil)
}

// ViewReusing is View for a caller that holds an earlier view of the
// folder (prev, in UID order, only read): messages that did not change
// share their hash strings and flag slices with it, so re-reading a
// large folder after a small change allocates little.
func (s *State) ViewReusing(addr, name string, prev []Message) (Folder, []Message, error) {
	return s.ViewSince(addr, name, Folder{}, prev)
}

// ViewSince is ViewReusing for a caller that also holds the folder record
// prev was read with. When the change log (changelog.go) holds every
// message write since that record's ModSeq, only the messages written
// are read, so bringing a view up to date after one change costs a
// lookup, not a scan of the folder.
func (s *State) ViewSince(addr, name string, prevFolder Folder, prev []Message) (Folder, []Message, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return Folder{}, nil, err
	}
	var f Folder
	var msgs []Message
	err = s.view(func(r pebble.Reader) error {
		snap := r.(*pebble.DB).NewSnapshot()
		defer snap.Close()
		ok, err := getJSON(snap, folderKey(a, CanonicalFolder(name)), &f)
		if err != nil || !ok {
			return orErr(err, ErrNoFolder, "folder %s does not exist", name)
		}
		prefix := messagePrefix(a, f.ID)
		if prevFolder.ID != 0 && prevFolder.ID == f.ID && prevFolder.UIDValidity == f.UIDValidity &&
			prevFolder.ModSeq <= f.ModSeq {
			// The log is read after the folder: every write up to
			// f.ModSeq was logged before its batch committed.
			if uids, ok := s.changes.changed(prefix, prevFolder.ModSeq, f.ModSeq); ok {
				msgs, err = patchMessages(snap, prefix, prev, uids)
				return err
			}
		}
		msgs, err = scanMessages(snap, prefix, f.scanAfter(), 0, prev)
		return err
	})
	return f, msgs, err
}

// patchMessages returns prev with the messages of uids (ascending) read
// again from r: changed, added, or gone.
func patchMessages(r pebble.Reader, prefix []byte, prev []Message, uids []uint32) ([]Message, error) {
	out := make([]Message, 0, len(prev)+len(uids))
	key := slices.Clone(prefix)
	next := 0 // prev[next:] is neither copied nor replaced yet
	for _, uid := range uids {
		j := next
		for j < len(prev) && prev[j].UID < uid {
			j++
		}
		out = append(out, prev[next:j]...)
		next = j
		var p *Message
		if next < len(prev) && prev[next].UID == uid {
			p = &prev[next]
			next++
		}
		key = binary.BigEndian.AppendUint32(key[:len(prefix)], uid)
		raw, closer, err := r.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get message %d: %w", uid, err)
		}
		out = append(out, Message{})
		err = out[len(out)-1].decode(raw, p)
		closer.Close()
		if err != nil {
			return nil, err
		}
	}
	return append(out, prev[next:]...), nil
}

// scanMessages reads messages under prefix with UID > after, up to limit
// (0: all), in UID order, decoding each against the message of the same
// UID in prev, an earlier read of the folder (see Message.decode; nil:
// none).
func scanMessages(r pebble.Reader, prefix []byte, after uint32, limit int, prev []Message) ([]Message, error) {
	if after == ^uint32(0) {
		return nil, nil
	}
	lower := binary.BigEndian.AppendUint32(append([]byte(nil), prefix...), after+1)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Message
	if len(prev) > 0 {
		out = make([]Message, 0, len(prev))
	}
	j := 0
	for ok := it.First(); ok && (limit <= 0 || len(out) < limit); ok = it.Next() {
		var p *Message
		if k := it.Key(); len(k) >= 4 && len(prev) > 0 {
			uid := binary.BigEndian.Uint32(k[len(k)-4:])
			for j < len(prev) && prev[j].UID < uid {
				j++
			}
			if j < len(prev) && prev[j].UID == uid {
				p = &prev[j]
			}
		}
		out = append(out, Message{})
		if err := out[len(out)-1].decode(it.Value(), p); err != nil { // in place: no copy escapes
			return nil, err
		}
	}
	return out, it.Error()
}

// CheckPassword verifies a mailbox's password. It returns the mailbox (so
// the caller learns the canonical address and whether it is disabled) and
// whether the password matched. An unknown mailbox returns ErrNotFound.
func (s *State) CheckPassword(addr, password string) (Mailbox, bool, error) {
	mb, err := s.Mailbox(addr)
	if err != nil {
		return mb, false, err
	}
	ok := VerifyPassword(mb.PasswordHash, password)
	mb.PasswordHash = ""
	return mb, ok, nil
}
