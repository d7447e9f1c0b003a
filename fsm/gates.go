package fsm

// gatedEncoding is the cluster setting from which apply follows the
// rules of EncodingJSON11: the forward depth check across joined chains
// (forwarddepth.go), settings that merge the fields a command names
// (SettingsSet.Fields) and the refusal of a UID past 2^32-1
// (uidlimit.go). It is the one place the number is named, so that it can
// be moved if another encoding takes it first.
const gatedEncoding = EncodingJSON11

// gated reports whether the cluster's setting, as this entry sees it, is
// at gatedEncoding or more. The setting is replicated state, so every
// replica decides alike; a release that does not know gatedEncoding
// stops on the entry that raises to it, and the setting cannot be
// lowered from 4 on (SettingsSet).
func gated(tx *txn) (bool, error) {
	s, err := tx.settings()
	if err != nil {
		return false, err
	}
	return s.CommandEncoding >= gatedEncoding, nil
}
