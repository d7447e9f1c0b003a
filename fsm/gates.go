package fsm

// gatedEncoding is the cluster setting from which apply follows the
// rules of EncodingJSON11: the forward depth check across joined chains
// (forwarddepth.go), settings that merge the fields a command names
// (SettingsSet.Fields) and the refusal of a UID past 2^32-1
// (uidlimit.go). It is the one place the number is named, so that it can
// be moved if another encoding takes it first.
const gatedEncoding = EncodingJSON11

// gatedEncoding12 is the cluster setting from which apply follows the
// rules of EncodingJSON12: a QueueUpdate whose NextAttempt is zero
// leaves the entry's schedule as it is (queuecmds.go), and the mark of a
// mailbox being removed is held per removal (removalholds.go). Named
// once, as gatedEncoding is.
const gatedEncoding12 = EncodingJSON12

// gatedEncoding13 is the cluster setting from which apply follows the
// rules of EncodingJSON13: a new mailbox or forward name must be text
// that shows what it is, and is stored in NFC (localpart.go); a new
// domain, or the domain of a new name, must be ASCII (checkNewDomain).
// Named once, as gatedEncoding is.
const gatedEncoding13 = EncodingJSON13

// gatedEncoding14 is the cluster setting from which apply follows the
// rules of EncodingJSON14: a clear of the being-removed mark that names
// no removal ends only the hold of no known owner (removalholds.go),
// and a Copy's dedupe record keeps the UIDs it assigned (dedupe.go).
// Named once, as gatedEncoding is.
const gatedEncoding14 = EncodingJSON14

// gatedEncoding15 is the cluster setting from which apply follows the
// rules of EncodingJSON15: a queue recipient's local part may be longer
// than 64 octets (QueuePart.validate). Named once, as gatedEncoding is.
const gatedEncoding15 = EncodingJSON15

// gatedEncoding17 is the cluster setting from which apply honours a
// restored message's POP3 unique-id (Deliver.POP3UIDL, POP3UIDLSet,
// pop3uidl.go). Named once, as gatedEncoding is.
const gatedEncoding17 = EncodingJSON17

// gated reports whether the cluster's setting, as this entry sees it, is
// at gatedEncoding or more. The setting is replicated state, so every
// replica decides alike; a release that does not know gatedEncoding
// stops on the entry that raises to it, and the setting cannot be
// lowered from 4 on (SettingsSet).
func gated(tx *txn) (bool, error) { return gatedAt(tx, gatedEncoding) }

// gated12 is gated for the rules of gatedEncoding12.
func gated12(tx *txn) (bool, error) { return gatedAt(tx, gatedEncoding12) }

// gated13 is gated for the rules of gatedEncoding13.
func gated13(tx *txn) (bool, error) { return gatedAt(tx, gatedEncoding13) }

// gated14 is gated for the rules of gatedEncoding14.
func gated14(tx *txn) (bool, error) { return gatedAt(tx, gatedEncoding14) }

// gated15 is gated for the rules of gatedEncoding15.
func gated15(tx *txn) (bool, error) { return gatedAt(tx, gatedEncoding15) }

// gated17 is gated for the rules of gatedEncoding17.
func gated17(tx *txn) (bool, error) { return gatedAt(tx, gatedEncoding17) }

// gatedAt reports whether the cluster's setting, as this entry sees it,
// is at enc or more.
func gatedAt(tx *txn, enc int) (bool, error) {
	s, err := tx.settings()
	if err != nil {
		return false, err
	}
	return s.CommandEncoding >= enc, nil
}
