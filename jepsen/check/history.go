package check

// OpType says whether an Op is an invocation or which kind of completion.
type OpType string

// The four op types. Timeouts and connection losses are Info, never Fail.
const (
	Invoke OpType = "invoke"
	OK     OpType = "ok"
	Fail   OpType = "fail"
	Info   OpType = "info"
)

// Valid reports whether t is one of the four op types.
func (t OpType) Valid() bool {
	switch t {
	case Invoke, OK, Fail, Info:
		return true
	}
	return false
}

// Operation names (Op.F) understood by the checkers. Ops with other names are
// kept in the history and ignored by every checker.
const (
	FDeliver    = "deliver"     // Key or To: mailboxes; MsgID; optional Flags; OK may carry UID, UIDValidity
	FRead       = "read"        // Key: mailbox; OK carries UIDValidity, UIDNext, Messages; Final marks final reads
	FPopRetr    = "pop-retr"    // Key: mailbox; OK carries the MsgID retrieved
	FFetch      = "fetch"       // Key: mailbox; OK carries the MsgID of the one body read (IMAP FETCH, admin raw read)
	FPopDele    = "pop-dele"    // Key: mailbox; MsgID to delete (DELE + QUIT)
	FExpunge    = "expunge"     // Key: mailbox; MsgID to delete (\Deleted + EXPUNGE)
	FStoreFlags = "store-flags" // Key: mailbox; MsgID; Mode; Flags
	FReadFlags  = "read-flags"  // Key: mailbox; MsgID; OK carries Flags
	FDirAdd     = "dir-add"     // Key: mailbox; Fail with Error ErrExists if present
	FDirRemove  = "dir-remove"  // Key: mailbox; Fail with Error ErrNotFound if absent
	FDirRead    = "dir-read"    // Key: mailbox; OK carries Exists
	FForward    = "forward"     // Key: forward address; To: its remote recipients; MsgID
	FArrive     = "arrive"      // remote server's receipt; OK/Info carry To, From, MsgID (see CheckForwards)
)

// Store-flags modes (Op.Mode), as IMAP STORE +FLAGS, -FLAGS and FLAGS.
const (
	ModeAdd    = "add"
	ModeRemove = "remove"
	ModeSet    = "set"
)

// Error codes (Op.Error) that carry meaning for the directory model. A Fail
// with any other error is taken to have had no effect and says nothing about
// the state.
const (
	ErrExists   = "exists"
	ErrNotFound = "not-found"
)

// Message is one entry of a mailbox listing returned by a read.
type Message struct {
	UID   uint32 `json:"uid,omitempty"` // 0 when unknown (POP3)
	MsgID string `json:"msg_id"`
}

// Op is one event of a history: an invocation or a completion. Inputs are
// taken from the invoke, outputs from the completion.
type Op struct {
	Index   int    `json:"index"`   // position in the history (set by Recorder and Decode)
	Time    int64  `json:"time"`    // ns on the harness's monotonic clock
	Process int    `json:"process"` // logical client; one outstanding op at a time
	Type    OpType `json:"type"`
	F       string `json:"f"`
	Key     string `json:"key,omitempty"`  // mailbox address or directory key
	Node    string `json:"node,omitempty"` // node the client talked to
	Error   string `json:"error,omitempty"`

	MsgID       string    `json:"msg_id,omitempty"`
	To          []string  `json:"to,omitempty"`   // deliver: recipient mailboxes, if more than Key
	From        string    `json:"from,omitempty"` // arrive: envelope sender
	Mode        string    `json:"mode,omitempty"`
	Flags       []string  `json:"flags,omitempty"`
	Exists      *bool     `json:"exists,omitempty"`
	Final       bool      `json:"final,omitempty"`
	UID         uint32    `json:"uid,omitempty"`
	UIDValidity uint32    `json:"uid_validity,omitempty"`
	UIDNext     uint32    `json:"uid_next,omitempty"`
	Messages    []Message `json:"messages,omitempty"`
}

// Mailboxes returns the recipient mailboxes of a delivery: To if set,
// otherwise Key.
func (o Op) Mailboxes() []string {
	if len(o.To) > 0 {
		return o.To
	}
	if o.Key == "" {
		return nil
	}
	return []string{o.Key}
}

// Bool returns a pointer to b, for Op.Exists.
func Bool(b bool) *bool { return &b }

// History is a recorded sequence of ops in the order they happened.
type History []Op
