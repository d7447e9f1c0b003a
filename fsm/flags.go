package fsm

// FlagOp says how a FlagsStore combines flags with a message's own
// (RFC 9051 section 6.4.6: FLAGS, +FLAGS, -FLAGS).
type FlagOp int

// Flag operations.
const (
	FlagsSet FlagOp = iota
	FlagsAdd
	FlagsRemove
)
