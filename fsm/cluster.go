package fsm

import "slices"

// Cluster membership records and settings.

// MemberSet records (or updates) a node's published addresses.
type MemberSet struct {
	Member
}

func (*MemberSet) Type() CmdType { return CmdMemberSet }

func (c *MemberSet) apply(tx *txn) (any, error) {
	if c.ID == "" || c.ClusterAddr == "" {
		return nil, errorf(ErrInvalid, "a member needs an id and a cluster address")
	}
	if err := tx.markPlacement(); err != nil {
		return nil, err
	}
	return nil, tx.put(memberKey(c.ID), c.Member)
}

// MemberRemove forgets a node's record. Removing an unknown node is not an
// error, so that a remove can be retried.
type MemberRemove struct {
	ID string `json:"id"`
}

func (*MemberRemove) Type() CmdType { return CmdMemberRemove }

func (c *MemberRemove) apply(tx *txn) (any, error) {
	if err := tx.markPlacement(); err != nil {
		return nil, err
	}
	return nil, tx.del(memberKey(c.ID))
}

// SettingsSet replaces the cluster settings, or with Fields only those
// it names.
type SettingsSet struct {
	Settings
	// Fields, when set, names the settings (by their JSON names) this
	// command changes: apply lays those of Settings over the settings as
	// they are when it applies, checks the whole and answers it. Two
	// changes decided on one read through two nodes then both hold,
	// where whole settings let the later one undo the earlier's change.
	// A release before EncodingJSON11 would drop it and take the whole
	// Settings, so a command with it is written in 11.
	Fields  []string `json:"fields,omitempty"`
	written byte     // the encoding the entry was written in (registry.parse)
}

func (*SettingsSet) Type() CmdType { return CmdSettingsSet }

// MaxReplicas bounds R.
const MaxReplicas = 7

func (c *SettingsSet) needsJSON3() bool { return c.Settings.MaxVoters != 0 }

// needsJSON4: a setting of encoding 4 or more is itself written in it, so
// that a release before 4 stops on the raise instead of refusing it as
// invalid and going on with the old encoding (it would then refuse, as
// a leader, every command the others write in 4).
func (c *SettingsSet) needsJSON4() bool { return c.Settings.CommandEncoding >= EncodingJSON4 }

// needsJSON5: likewise for 5, so that a release that reads up to 4 stops
// on the raise to 5.
func (c *SettingsSet) needsJSON5() bool { return c.Settings.CommandEncoding >= EncodingJSON5 }

// needsEncoding: likewise for 6 and later. An encoding this release
// does not know is written in the newest it knows, and every release
// refuses it, also one that knows it (raiseRefused).
func (c *SettingsSet) needsEncoding() int {
	need := 0
	if c.Settings.CommandEncoding >= EncodingJSON6 {
		need = min(c.Settings.CommandEncoding, NewestEncoding)
	}
	if len(c.Fields) > 0 {
		need = max(need, gatedEncoding)
	}
	return need
}

// raisesTo lets the command that raises the cluster's encoding be written
// in the encoding it raises to.
// With Fields it raises only when it names the encoding.
func (c *SettingsSet) raisesTo() int {
	if c.Fields != nil && !slices.Contains(c.Fields, "command_encoding") {
		return 0
	}
	return c.Settings.CommandEncoding
}

func (c *SettingsSet) apply(tx *txn) (any, error) {
	s, err := c.merged(tx)
	if err != nil {
		return nil, err
	}
	if s.Replicas < 1 || s.Replicas > MaxReplicas {
		return nil, errorf(ErrInvalid, "replicas must be 1 to %d, not %d", MaxReplicas, s.Replicas)
	}
	if s.WriteQuorum < 1 || s.WriteQuorum > s.Replicas {
		return nil, errorf(ErrInvalid, "write quorum must be 1 to replicas (%d), not %d", s.Replicas, s.WriteQuorum)
	}
	// A partial update that leaves the encoding alone raises nothing: the
	// written-below-target rule is for raises (once the cluster is past
	// the encoding such an update is written in, it would refuse them all).
	if s.CommandEncoding < 0 || c.raisesTo() != 0 && raiseRefused(s.CommandEncoding, int(c.written), NewestEncoding) {
		if s.CommandEncoding >= 0 && s.CommandEncoding <= NewestEncoding {
			// Proposed through a node of an older release, which wrote it
			// in the newest encoding it knows (needsEncoding).
			return nil, errorf(ErrInvalid, "command encoding %d was proposed through a node that reads only up to %d; raise it through a node of a release that reads %d, once every member runs one",
				s.CommandEncoding, c.written, s.CommandEncoding)
		}
		return nil, errorf(ErrInvalid, "command encoding must be 0 to %d, not %d", NewestEncoding, s.CommandEncoding)
	}
	old, err := tx.settings()
	if err != nil {
		return nil, err
	}
	if old.CommandEncoding >= EncodingJSON4 && s.CommandEncoding < old.CommandEncoding {
		// Folders created since have UIDVALIDITYs from the counter and
		// sessions' commands carry folder checks: a release or a proposer
		// back on the old rules would undo both.
		return nil, errorf(ErrInvalid, "command encoding %d cannot be lowered (to %d) once at %d or more", old.CommandEncoding, s.CommandEncoding, EncodingJSON4)
	}
	if s.MaxVoters != 0 && (s.MaxVoters < 1 || s.MaxVoters > MaxMaxVoters || s.MaxVoters%2 == 0) {
		return nil, errorf(ErrInvalid, "max voters must be odd, 1 to %d, not %d (an even number tolerates no more failures than one fewer)", MaxMaxVoters, s.MaxVoters)
	}
	if s.MaxVoters != 0 && s.CommandEncoding < EncodingJSON3 {
		return nil, errorf(ErrInvalid, "max voters needs command encoding %d (to lower the encoding, set max voters to 0 first)", EncodingJSON3)
	}
	if old.Replicas != s.Replicas {
		if err := tx.markPlacement(); err != nil {
			return nil, err
		}
	}
	if old.CommandEncoding < gatedEncoding && s.CommandEncoding >= gatedEncoding {
		if err := indexAllForwards(tx); err != nil { // forwardindex.go
			return nil, err
		}
	}
	if c.Fields == nil {
		return nil, tx.put(keySettings, s)
	}
	return s, tx.put(keySettings, s)
}

// merged is the settings the command sets: Settings, or with Fields
// those fields of it over the current settings.
func (c *SettingsSet) merged(tx *txn) (Settings, error) {
	if c.Fields == nil {
		return c.Settings, nil
	}
	s, err := tx.settings()
	if err != nil {
		return s, err
	}
	for _, name := range c.Fields {
		switch name {
		case "replicas":
			s.Replicas = c.Replicas
		case "write_quorum":
			s.WriteQuorum = c.WriteQuorum
		case "command_encoding":
			s.CommandEncoding = c.CommandEncoding
		case "max_voters":
			s.MaxVoters = c.MaxVoters
		default:
			return s, errorf(ErrInvalid, "no setting %q", name)
		}
	}
	return s, nil
}

// raiseRefused reports whether a release that reads up to newest refuses
// a raise to target written in encoding written. The rule must not depend
// on newest for an entry every release decodes: from encoding 6 on a
// proposer writes a raise in its target, or in the newest encoding it
// knows when it does not know the target (needsEncoding), so a raise
// written below its target comes from a release that cannot read the
// target, and every release refuses it, those that could read it too.
// Releases up to EncodingJSON8 refused only a target past their own
// newest, which is the same for every target above 8; for targets up to
// 8 they did not agree with each other (a raise to 8 written in 7 by a
// release reading up to 7: refused there, taken by 8), and those entries
// are applied as they were.
func raiseRefused(target, written, newest int) bool {
	return target > newest || target > EncodingJSON8 && written < target
}

func (c *SettingsSet) setWritten(enc byte) { c.written = enc }
