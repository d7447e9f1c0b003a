package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// Queries read the local state as applied so far. For a read that must
// reflect every write acknowledged before it began, the caller first waits
// for the read index (package node does this).

// view runs fn against the live database.
func (s *State) view(fn func(r pebble.Reader) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return fn(s.db)
}

// Resolve tells where mail for addr goes. It returns ErrNotFound for an
// unknown address in a hosted domain and ErrNotLocal for a domain that is
// not hosted.
func (s *State) Resolve(addr string) (Resolution, error) {
	return s.ResolveIn(addr, nil, false)
}

// ResolveIn is Resolve for one of a transaction's recipients: it reuses
// the expansions of forwards that memo holds and keeps those it makes
// there (ExpansionMemo). With confirm, the lookup runs after a read
// barrier to confirm a refusal, and reuses only expansions made so. A
// nil memo is one for this lookup alone.
func (s *State) ResolveIn(addr string, memo *ExpansionMemo, confirm bool) (Resolution, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return Resolution{}, err
	}
	if memo != nil {
		memo.mu.Lock()
		defer memo.mu.Unlock()
	}
	var out Resolution
	err = s.view(func(r pebble.Reader) error {
		nfc := false
		if nfcLocal(a.Local) != a.Local { // an NFC name's sub-address base is NFC too
			if nfc, err = s.lookupsNFC(r); err != nil {
				return err
			}
		}
		l := &lookup{memo: memoUse{m: memo, confirm: confirm}}
		res, err := (&resolution{lookup: l, nfc: nfc}).run(r, a)
		s.resolveReads.Add(int64(l.reads))
		if memo != nil {
			memo.reads += l.reads
		}
		if errors.Is(err, ErrNotFound) {
			// Only a miss pays for the domain check.
			if local, herr := hasKey(r, domainKey(a.Domain)); herr != nil || !local {
				return orErr(herr, ErrNotLocal, "domain %s is not hosted here", a.Domain)
			}
		}
		if err != nil {
			return err
		}
		out = res.Resolution
		return nil
	})
	return out, err
}

// ResolveReads is how many exact lookups (records looked up under one
// address) the lookups of mail recipients (Resolve, ResolveIn) have
// made since the state was opened.
func (s *State) ResolveReads() int64 { return s.resolveReads.Load() }

// Domain returns one domain.
func (s *State) Domain(name string) (Domain, error) {
	d, err := NormalizeDomain(name)
	if err != nil {
		return Domain{}, err
	}
	var out Domain
	return out, s.getOne(domainKey(d), &out, "domain %s does not exist", d)
}

// Mailbox returns one mailbox. From command encoding 13 a mailbox
// stored in NFC is found by another form of its name too, as Resolve
// finds it (logins, localpart.go); a name stored before in another form
// is found by its own bytes first.
func (s *State) Mailbox(addr string) (Mailbox, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return Mailbox{}, err
	}
	var out Mailbox
	err = s.view(func(r pebble.Reader) error {
		found, err := getJSON(r, mailboxKey(a), &out)
		if err != nil || found {
			return err
		}
		n, found, err := s.mailboxNFC(r, a, &out)
		if err != nil || found {
			a = n
			return err
		}
		return errorf(ErrNotFound, "mailbox %s does not exist", a)
	})
	if err != nil {
		return out, err
	}
	out.PasswordHash, err = s.passwordHash(a)
	return out, err
}

// mailboxNFC reads into out the mailbox stored under the NFC of a, when
// it differs and lookups try it (lookupsNFC), and no forward is stored
// under a itself: RCPT of a then goes to the forward's targets
// (resolution.expandSpelled), and MailboxAdd of a would make a mailbox
// of that spelling beside it (newName), so the NFC mailbox is not a's.
func (s *State) mailboxNFC(r pebble.Reader, a Address, out *Mailbox) (Address, bool, error) {
	n, err := nfcAddress(a)
	if err != nil || n == a {
		return a, false, nil
	}
	if on, err := s.lookupsNFC(r); err != nil || !on {
		return a, false, err
	}
	if fw, err := hasKey(r, forwardKey(a)); err != nil || fw {
		return a, false, err
	}
	found, err := getJSON(r, mailboxKey(n), out)
	return n, found, err
}

// lookupsNFC reports whether lookups try the NFC of a name that finds
// nothing: from command encoding 13, when new names are stored in NFC.
func (s *State) lookupsNFC(r pebble.Reader) (bool, error) {
	st, err := s.hot.getSettings(r)
	return st.CommandEncoding >= gatedEncoding13, err
}

func (s *State) passwordHash(a Address) (string, error) {
	var hash string
	err := s.view(func(r pebble.Reader) error {
		v, closer, err := r.Get(passwordKey(a))
		if errors.Is(err, pebble.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		hash = string(v)
		return closer.Close()
	})
	return hash, err
}

// Forward returns one forward (or catch-all).
func (s *State) Forward(addr string) (Forward, error) {
	a, err := ParseForwardSource(addr)
	if err != nil {
		return Forward{}, err
	}
	var out Forward
	return out, s.getOne(forwardKey(a), &out, "forward %s does not exist", a)
}

// Folders lists a mailbox's folders.
func (s *State) Folders(addr string) ([]Folder, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	if _, err := s.Mailbox(addr); err != nil {
		return nil, err
	}
	return scanAll[Folder](s, folderPrefix(a), "", 0)
}

// Settings returns the cluster settings.
func (s *State) Settings() (Settings, error) {
	var out Settings
	err := s.view(func(r pebble.Reader) (err error) {
		out, err = s.hot.getSettings(r)
		return err
	})
	return out, err
}

// SettingsStored reports whether the cluster settings were ever written
// (Settings returns the defaults until they are).
func (s *State) SettingsStored() (bool, error) {
	var ok bool
	err := s.view(func(r pebble.Reader) (err error) {
		ok, err = hasKey(r, keySettings)
		return err
	})
	return ok, err
}

// Domains lists domains in order, starting after the name `after`.
func (s *State) Domains(after string, limit int) ([]Domain, error) {
	return scanAll[Domain](s, []byte("d\x00"), after, limit)
}

// Mailboxes lists a domain's mailboxes in order of their folded local
// part, starting after the local part `after`.
func (s *State) Mailboxes(domain, after string, limit int) ([]Mailbox, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return nil, err
	}
	mbs, err := scanAll[Mailbox](s, mailboxPrefix(d), after, limit)
	for i := range mbs {
		if err != nil {
			break
		}
		a, _ := ParseAddress(mbs[i].Address)
		mbs[i].PasswordHash, err = s.passwordHash(a)
	}
	return mbs, err
}

// Forwards lists a domain's forwards, starting after the local part `after`.
func (s *State) Forwards(domain, after string, limit int) ([]Forward, error) {
	d, err := NormalizeDomain(domain)
	if err != nil {
		return nil, err
	}
	return scanAll[Forward](s, forwardPrefix(d), after, limit)
}

// ForwardsTo lists the forwards (and catch-alls) of every domain that
// name target among their targets, or a sub-address of it that delivers
// to it (namesTarget), up to limit (0: all), in the order of their keys.
// From the gated encoding it reads the target index (forwardsToIndexed);
// below it, where there is none, it reads every forward: for an
// administrator's question (what still points at a mailbox about to
// go), not for a hot path.
func (s *State) ForwardsTo(target string, limit int) ([]Forward, error) {
	return s.ForwardsToAfter(target, "", limit)
}

// ForwardsToAfter is ForwardsTo from the forward after on: those whose
// address sorts after it in key order (its domain, then its folded
// local part), so that a listing longer than one page goes on where
// the last page ended ("" starts at the first). after need not exist.
func (s *State) ForwardsToAfter(target, after string, limit int) ([]Forward, error) {
	a, err := ParseAddress(target)
	if err != nil {
		return nil, err
	}
	var from string // the address part to start after
	if after != "" {
		fa, err := ParseForwardSource(after)
		if err != nil {
			return nil, err
		}
		from = addrPart(fa)
	}
	want, at := a.Key(), []byte("@"+a.Domain) // stored targets have canonical domains
	var out []Forward
	err = s.view(func(r pebble.Reader) error {
		if st, err := readSettings(r); err != nil || st.CommandEncoding >= gatedEncoding {
			if err == nil {
				out, err = forwardsToIndexed(r, a, from, limit)
			}
			return err
		}
		lower := allForwardsPrefix()
		if from != "" {
			lower = append(append(lower, from...), 0)
		}
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(allForwardsPrefix())})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok && (limit <= 0 || len(out) < limit); ok = it.Next() {
			raw, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			if !bytes.Contains(raw, at) {
				continue // no target in the domain: not worth decoding
			}
			var fw Forward
			if err := decodeRecord(raw, &fw); err != nil {
				return fmt.Errorf("decode %q: %w", it.Key(), err)
			}
			for _, t := range fw.Targets {
				if !strings.HasSuffix(t, string(at)) {
					continue
				}
				ok, err := namesTarget(r, t, want)
				if err != nil {
					return err
				}
				if ok {
					out = append(out, fw)
					break
				}
			}
		}
		return it.Error() // a read that failed ends the scan early: not a shorter list
	})
	return out, err
}

// namesTarget reports whether the forward target t is the address whose
// key is want, or a sub-address of it (RFC 5233) that reaches it because
// no entry of its own exists (resolve): removing want's mailbox leaves
// such a target pointing nowhere just the same.
func namesTarget(r pebble.Reader, t, want string) (bool, error) {
	ta, err := ParseAddress(t)
	if err != nil {
		return false, nil
	}
	if ta.Key() == want {
		return true, nil
	}
	base := subaddressBase(ta.Local)
	if base == "" || (Address{Local: base, Domain: ta.Domain}).Key() != want {
		return false, nil
	}
	for _, key := range [][]byte{mailboxKey(ta), forwardKey(ta)} {
		if own, err := hasKey(r, key); err != nil || own {
			return false, err
		}
	}
	return true, nil
}

// Members lists the recorded cluster members.
func (s *State) Members() ([]Member, error) {
	var out []Member
	err := s.view(func(r pebble.Reader) error {
		ms, err := s.hot.getMembers(r)
		out = slices.Clone(ms) // the cached list is shared
		return err
	})
	return out, err
}

func (s *State) getOne(key []byte, v any, format string, args ...any) error {
	return s.view(func(r pebble.Reader) error {
		ok, err := getJSON(r, key, v)
		if err != nil {
			return err
		}
		if !ok {
			return errorf(ErrNotFound, format, args...)
		}
		return nil
	})
}

// scanAll decodes every record under prefix whose key suffix sorts after
// `after`, up to limit records (0: no limit).
func scanAll[T any](s *State, prefix []byte, after string, limit int) ([]T, error) {
	var out []T
	err := s.view(func(r pebble.Reader) (err error) {
		out, err = scanReader[T](r, prefix, after, limit)
		return err
	})
	return out, err
}

// scanReader is scanAll on a given reader.
func scanReader[T any](r pebble.Reader, prefix []byte, after string, limit int) ([]T, error) {
	var out []T
	lower := prefix
	if after != "" {
		lower = append(append([]byte(nil), prefix...), after+"\x00"...)
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for ok := it.First(); ok && (limit <= 0 || len(out) < limit); ok = it.Next() {
		var v T
		raw, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		if err := decodeRecord(raw, &v); err != nil {
			return nil, fmt.Errorf("decode %q: %w", it.Key(), err)
		}
		out = append(out, v)
	}
	return out, it.Error()
}

// Messages lists a folder's messages in UID order, starting after UID
// `after`, up to limit (0: all).
func (s *State) Messages(addr, folder string, after uint32, limit int) ([]Message, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	f, err := s.Folder(addr, folder)
	if err != nil {
		return nil, err
	}
	var out []Message
	err = s.view(func(r pebble.Reader) error {
		out, err = scanMessages(r, messagePrefix(a, f.ID), max(after, f.scanAfter()), limit, nil)
		return err
	})
	return out, err
}

// Body returns the record of a stored body (hex SHA-256).
func (s *State) Body(hash string) (Body, error) {
	raw, err := parseHash(hash)
	if err != nil {
		return Body{}, err
	}
	var b Body
	return b, s.getOne(bodyKey(raw), &b, "body %s is not referenced", hash)
}
