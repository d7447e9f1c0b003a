package fsm

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
)

// CmdType is the first byte of every encoded command. Values are part of
// the log format: never renumber or reuse one.
type CmdType byte

// Command types.
const (
	CmdDomainAdd       CmdType = 1
	CmdDomainRemove    CmdType = 2
	CmdMailboxAdd      CmdType = 3
	CmdMailboxRemove   CmdType = 4
	CmdMailboxUpdate   CmdType = 5
	CmdForwardAdd      CmdType = 6
	CmdForwardRemove   CmdType = 7
	CmdMemberSet       CmdType = 8
	CmdMemberRemove    CmdType = 9
	CmdSettingsSet     CmdType = 10
	CmdDeliver         CmdType = 11
	CmdFolderCreate    CmdType = 12
	CmdFolderDelete    CmdType = 13
	CmdFolderRename    CmdType = 14
	CmdFolderSubscribe CmdType = 15
	CmdFlagsStore      CmdType = 16
	CmdExpunge         CmdType = 17
	CmdCopy            CmdType = 18
	CmdMaildropLock    CmdType = 19
	CmdBodyCollect     CmdType = 20
	CmdBodyForget      CmdType = 21
	CmdBodyPlace       CmdType = 22
	CmdQueueLease      CmdType = 23
	CmdQueueUpdate     CmdType = 24
	CmdQueueRetry      CmdType = 25
	CmdQueueRemove     CmdType = 26
	CmdStateDigest     CmdType = 27
	CmdPOP3UIDLSet     CmdType = 28
)

// Command encodings, the second byte of every encoded command. Values are
// part of the log format. A replica that meets an encoding it does not
// know panics rather than guess.
const (
	// EncodingJSON is a JSON payload; every command has it.
	EncodingJSON = 1
	// EncodingBinary is a command's binary codec (Deliver has one);
	// commands without one are still written as EncodingJSON. A release
	// before it stops on such an entry, so proposers use it only when
	// the cluster setting CommandEncoding allows it (Settings).
	EncodingBinary = 2
	// EncodingJSON3 is a JSON payload with fields a release before it
	// would silently drop (a Deliver's queue DSN parameters), so that
	// such a release stops on the entry instead of applying it
	// differently from the others. Proposers write those fields only
	// when the cluster setting allows it.
	EncodingJSON3 = 3
	// EncodingJSON4 is EncodingJSON3 with the fields of the next release
	// that would be dropped as silently: a message command's FolderCheck
	// (foldercheck.go).
	EncodingJSON4 = 4
	// EncodingJSON5 changes no command: raising the cluster to it switches
	// the cluster links to per-frame authentication and has every node
	// refuse the older handshake (node/mux.go, node/linkseal.go). Only
	// the setting that raises to it is written in it, so that a release
	// before it stops on the raise instead of refusing it as invalid.
	EncodingJSON5 = 5
	// EncodingJSON6 is EncodingJSON5 with a field a release before it
	// would drop: ForwardAdd.Replace, which turns an add that such a
	// release refuses ("already exists") into a replacement.
	EncodingJSON6 = 6
	// EncodingJSON7 is EncodingJSON6 with a field a release before it
	// would drop: ForwardAdd.Fallbacks, under which the loop check
	// refuses forwards that the older rule let in.
	EncodingJSON7 = 7
	// EncodingJSON8 is EncodingJSON7 with a field a release before it
	// would drop: Copy.ID, under which a repeated copy copies nothing.
	EncodingJSON8 = 8
	// EncodingJSON9 is EncodingJSON8 with a command a release before it
	// does not know: StateDigest, which has every node digest its state
	// at the entry (statedigest.go). Such a release would stop on the
	// unknown type anyway; the encoding makes it stop on the encoding,
	// as on any newer entry, and gates the proposer by the setting.
	EncodingJSON9 = 9
	// EncodingJSON10 is EncodingJSON9 with a field a release before it
	// would drop: MailboxUpdate.Removing, the mark under which a mailbox
	// being removed in pieces refuses mail (Deliver, Copy) instead of
	// taking it to be removed with it.
	EncodingJSON10 = 10
	// EncodingJSON11 changes apply under a cluster setting of 11 or more
	// (gates.go): the forward depth check counts the chains that lead to
	// a new forward, a SettingsSet may name the fields it changes (a
	// release before it would drop Fields and take the rest as zero), and
	// a folder whose UIDs are used up refuses new messages. A release
	// before it stops on the raise, so every replica that applies an
	// entry after the raise applies it by these rules.
	EncodingJSON11 = 11
	// EncodingJSON12 changes apply under a cluster setting of 12 or more
	// (gates.go): a queue notice's update that names no NextAttempt
	// leaves the entry's schedule alone, so an operator's retry
	// committed meanwhile stands (QueueUpdate), and the mark of a
	// mailbox being removed is held by each removal under way
	// (MailboxUpdate.Remover, removalholds.go), so that one removal's
	// failure cannot clear it while another runs on. Remover is a field
	// a release before it would drop, so an update carrying it is
	// written in 12.
	EncodingJSON12 = 12
	// EncodingJSON13 changes apply under a cluster setting of 13 or more
	// (gates.go): a new mailbox or forward name whose local part is not
	// UTF-8, or holds a control, format (zero-width, bidi), separator or
	// unassigned character, is refused, and one not in NFC is stored in
	// NFC (localpart.go); a new domain, or a new name's, must be given in
	// ASCII. No command gains a field.
	EncodingJSON13 = 13
	// EncodingJSON14 changes apply under a cluster setting of 14 or more
	// (gates.go): a clear of a mailbox's being-removed mark that names no
	// removal ends only the hold of no known owner, not the holds of
	// removals still under way (removalholds.go), and the dedupe record
	// of a Copy keeps the UIDs it assigned, so that a repeat answers them
	// (dedupe.go). No command gains a field.
	EncodingJSON14 = 14
	// EncodingJSON15 changes apply under a cluster setting of 15 or more
	// (gates.go): a Deliver's queue part may name a recipient whose local
	// part is longer than 64 octets (another host's, such as the SRS
	// address of a long sender that a notice goes back to), which a
	// release before it refuses. No command gains a field.
	EncodingJSON15 = 15
	// EncodingJSON16 is EncodingJSON15 with a field a release before it
	// would drop: FolderDelete.If, the condition under which a folder
	// made moments before is deleted again only if nothing reached it
	// (folderdelif.go). Such a release would delete it unconditionally,
	// messages another session put there meanwhile with it, while the
	// others keep it.
	EncodingJSON16 = 16
	// EncodingJSON17 is EncodingJSON16 with a field and a command a
	// release before it would drop or not know: Deliver.POP3UIDL, the
	// unique-id a restored INBOX message keeps from its previous server,
	// and POP3UIDLSet, which gives restored messages theirs afterwards
	// (pop3uidl.go). Apply honours them under a cluster setting of 17 or
	// more (gates.go).
	EncodingJSON17 = 17
	// NewestEncoding is the newest encoding this release reads.
	NewestEncoding = EncodingJSON17
)

// Command is a state change proposed through raft.
type Command interface {
	Type() CmdType
	apply(tx *txn) (any, error)
}

// errNotBinary is a binary codec's answer for a value it does not cover;
// the command is then written as JSON.
var errNotBinary = errors.New("not in the binary encoding")

// strictCommand is a command whose value may need EncodingJSON3.
type strictCommand interface {
	needsJSON3() bool
}

// strictCommand4 is a command whose value may need EncodingJSON4.
type strictCommand4 interface {
	needsJSON4() bool
}

// strictCommand5 is a command whose value may need EncodingJSON5.
type strictCommand5 interface {
	needsJSON5() bool
}

// strictCommandN is a command whose value may need EncodingJSON6 or a
// later one: needsEncoding returns the encoding it needs, or 0.
type strictCommandN interface {
	needsEncoding() int
}

// encodingRaiser is a command that raises the cluster's encoding setting;
// it may itself be written in the encoding it raises to.
type encodingRaiser interface {
	raisesTo() int
}

// ErrEncoding: the command needs a newer encoding than the cluster
// setting allows. It is invalid input (ErrInvalid) to the caller.
var ErrEncoding = &Error{Kind: ErrInvalid, Msg: "this needs a newer command encoding than the cluster's (settings set --command-encoding, once every node runs this release)"}

// binaryCommand is a command with a binary codec.
type binaryCommand interface {
	Command
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// Encode serialises c as type byte, EncodingJSON, JSON payload.
func Encode(c Command) ([]byte, error) { return EncodeAs(c, EncodingJSON) }

// EncodeAs serialises c in the newest encoding up to enc that c has:
// binary for a command with a binary codec when enc allows it, else JSON.
func EncodeAs(c Command, enc int) ([]byte, error) {
	if r, ok := c.(encodingRaiser); ok {
		enc = max(enc, r.raisesTo())
	}
	if bc, ok := c.(binaryCommand); ok && enc >= EncodingBinary {
		payload, err := bc.MarshalBinary()
		if err == nil {
			return append([]byte{byte(c.Type()), EncodingBinary}, payload...), nil
		}
		if !errors.Is(err, errNotBinary) {
			return nil, fmt.Errorf("encode command %d: %w", c.Type(), err)
		}
	}
	encoding := byte(EncodingJSON)
	if sc, ok := c.(strictCommand); ok && sc.needsJSON3() {
		encoding = EncodingJSON3
	}
	if sc, ok := c.(strictCommand4); ok && sc.needsJSON4() {
		encoding = EncodingJSON4
	}
	if sc, ok := c.(strictCommand5); ok && sc.needsJSON5() {
		encoding = EncodingJSON5
	}
	if sc, ok := c.(strictCommandN); ok && sc.needsEncoding() > int(encoding) {
		encoding = byte(sc.needsEncoding())
	}
	if int(encoding) > max(enc, EncodingJSON) {
		return nil, fmt.Errorf("encode command %d: %w (%d, needs %d)", c.Type(), ErrEncoding, enc, encoding)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode command %d: %w", c.Type(), err)
	}
	out := make([]byte, 0, len(payload)+2)
	out = append(out, byte(c.Type()), encoding)
	return append(out, payload...), nil
}

// CheckEncoding returns ErrEncoding when the encoded command data uses a
// newer encoding than the cluster setting allows, as a leader sees it:
// a proposer may have encoded it under a setting since lowered. A command
// that raises the setting may use the encoding it raises to.
func CheckEncoding(data []byte, setting int) error {
	if len(data) < 2 || int(data[1]) <= max(setting, EncodingJSON) {
		return nil
	}
	if CmdType(data[0]) == CmdSettingsSet && isJSONEncoding(data[1]) {
		var c SettingsSet
		if json.Unmarshal(data[2:], &c) == nil && int(data[1]) <= max(setting, c.raisesTo()) {
			return nil
		}
	}
	return fmt.Errorf("entry in encoding %d: %w (%d)", data[1], ErrEncoding, setting)
}

// isJSONEncoding reports whether enc is one of the JSON encodings.
func isJSONEncoding(enc byte) bool {
	return enc == EncodingJSON || enc >= EncodingJSON3 && enc <= NewestEncoding
}

// registry maps command types to constructors. It is built per State so
// that there is no package-level mutable state.
type registry map[CmdType]func() Command

func (r registry) register(t CmdType, mk func() Command) {
	if _, dup := r[t]; dup {
		panic(fmt.Sprintf("fsm: command type %d registered twice", t))
	}
	if got := mk().Type(); got != t {
		panic(fmt.Sprintf("fsm: command type %d constructor makes type %d", t, got))
	}
	r[t] = mk
}

func newRegistry() registry {
	r := registry{}
	r.register(CmdDomainAdd, func() Command { return &DomainAdd{} })
	r.register(CmdDomainRemove, func() Command { return &DomainRemove{} })
	r.register(CmdMailboxAdd, func() Command { return &MailboxAdd{} })
	r.register(CmdMailboxRemove, func() Command { return &MailboxRemove{} })
	r.register(CmdMailboxUpdate, func() Command { return &MailboxUpdate{} })
	r.register(CmdForwardAdd, func() Command { return &ForwardAdd{} })
	r.register(CmdForwardRemove, func() Command { return &ForwardRemove{} })
	r.register(CmdMemberSet, func() Command { return &MemberSet{} })
	r.register(CmdMemberRemove, func() Command { return &MemberRemove{} })
	r.register(CmdSettingsSet, func() Command { return &SettingsSet{} })
	r.register(CmdDeliver, func() Command { return &Deliver{} })
	r.register(CmdFolderCreate, func() Command { return &FolderCreate{} })
	r.register(CmdFolderDelete, func() Command { return &FolderDelete{} })
	r.register(CmdFolderRename, func() Command { return &FolderRename{} })
	r.register(CmdFolderSubscribe, func() Command { return &FolderSubscribe{} })
	r.register(CmdFlagsStore, func() Command { return &FlagsStore{} })
	r.register(CmdExpunge, func() Command { return &Expunge{} })
	r.register(CmdCopy, func() Command { return &Copy{} })
	r.register(CmdMaildropLock, func() Command { return &MaildropLock{} })
	r.register(CmdBodyCollect, func() Command { return &BodyCollect{} })
	r.register(CmdBodyForget, func() Command { return &BodyForget{} })
	r.register(CmdBodyPlace, func() Command { return &BodyPlace{} })
	r.register(CmdQueueLease, func() Command { return &QueueLease{} })
	r.register(CmdQueueUpdate, func() Command { return &QueueUpdate{} })
	r.register(CmdQueueRetry, func() Command { return &QueueRetry{} })
	r.register(CmdQueueRemove, func() Command { return &QueueRemove{} })
	r.register(CmdStateDigest, func() Command { return &StateDigest{} })
	r.register(CmdPOP3UIDLSet, func() Command { return &POP3UIDLSet{} })
	return r
}

// decode parses an encoded command, panicking on anything it cannot
// understand: such an entry means this binary cannot follow the log.
func (r registry) decode(index uint64, data []byte) Command {
	c, err := r.parse(data)
	if err != nil {
		panic(fmt.Sprintf("fsm: entry %d: %v", index, err))
	}
	return c
}

// parse decodes an encoded command. The encoding byte alone chooses the
// payload's decoder: a payload is never sniffed, since a binary one may
// start with any byte (a Deliver whose ID is 123 bytes long starts with
// '{').
func (r registry) parse(data []byte) (Command, error) {
	if len(data) < 2 {
		return nil, fmt.Errorf("command of %d bytes", len(data))
	}
	mk, ok := r[CmdType(data[0])]
	if !ok {
		return nil, fmt.Errorf("unknown command type %d", data[0])
	}
	c := mk()
	var err error
	switch {
	case isJSONEncoding(data[1]):
		err = json.Unmarshal(data[2:], c)
	case data[1] == EncodingBinary:
		bc, ok := c.(binaryCommand)
		if !ok {
			return nil, fmt.Errorf("command type %d has no binary encoding", data[0])
		}
		err = bc.UnmarshalBinary(data[2:])
	default:
		return nil, fmt.Errorf("command type %d has encoding %d, this release reads up to %d", data[0], data[1], NewestEncoding)
	}
	if err != nil {
		return nil, fmt.Errorf("undecodable command type %d: %w", data[0], err)
	}
	if w, ok := c.(interface{ setWritten(byte) }); ok {
		w.setWritten(data[1])
	}
	return c, nil
}

// CheckCommand reports whether this release can decode the encoded
// command data, as apply will: nil when it can, else an ErrInvalid
// business error. A proposer calls it before it appends data to the log,
// where an entry that does not decode would stop every replica. It does
// not check the encoding against the cluster setting (CheckEncoding), nor
// anything apply decides (a valid command may still be refused). An entry
// of fewer than two bytes is refused too: apply skips an empty one, which
// carries no command.
func (s *State) CheckCommand(data []byte) error {
	if _, err := s.reg.parse(data); err != nil {
		return &Error{Kind: ErrInvalid, Msg: "command does not decode: " + err.Error()}
	}
	return nil
}
