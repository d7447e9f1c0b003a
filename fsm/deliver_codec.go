package fsm

import (
	"encoding/binary"
	"fmt"
)

// Deliver is the one command of the hot path: every accepted message is
// one, decoded on every replica, and as JSON its decode was a fifth of a
// replica's apply (BenchmarkApplyDeliverBatch). Its binary payload
// (EncodingBinary) is
//
//	str(id) str(hash) varint(size) strs(replicas) strs(mailboxes)
//	varint(internal_date) strs(flags) str(folder) queue(1)
//	[str(from) strs(recipients) varint(next_attempt)]
//
// where str is uvarint(len) and the bytes, strs is uvarint(n) and n strs,
// and queue is 1 when the queue part follows, else 0. A queue part that
// carries DSN parameters (rare) or a submission's mark is not covered:
// such a command is EncodingJSON3, and one naming a POP3UIDL (a
// restore's) EncodingJSON17.

// MarshalBinary encodes the command's payload.
func (c Deliver) MarshalBinary() ([]byte, error) {
	if c.POP3UIDL != "" {
		return nil, errNotBinary // EncodingJSON17 (pop3uidl.go)
	}
	b := make([]byte, 0, 128+len(c.Hash))
	b = appendString(b, c.ID)
	b = appendString(b, c.Hash)
	b = binary.AppendVarint(b, c.Size)
	b = appendStrings(b, c.Replicas)
	b = appendStrings(b, c.Mailboxes)
	b = binary.AppendVarint(b, c.InternalDate)
	b = appendStrings(b, c.Flags)
	b = appendString(b, c.Folder)
	if c.Queue == nil {
		return append(b, 0), nil
	}
	if c.needsJSON3() {
		return nil, errNotBinary
	}
	b = append(b, 1)
	b = appendString(b, c.Queue.From)
	b = appendStrings(b, c.Queue.Recipients)
	return binary.AppendVarint(b, c.Queue.NextAttempt), nil
}

func (c *Deliver) needsJSON3() bool {
	return c.Queue != nil && (c.Queue.DSN != nil || c.Queue.Submitted)
}

// UnmarshalBinary decodes a payload written by MarshalBinary, and only
// that: the entry's encoding byte has already chosen this decoder. (It
// once also took a payload starting with '{' for JSON, as the records'
// decoders do; but no release wrote a JSON Deliver under EncodingBinary,
// and a binary one whose ID is 123 bytes long starts with '{' too.)
func (c *Deliver) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	c.ID, c.Hash = d.str(d.uvarint()), d.str(d.uvarint())
	c.Size = d.varint()
	c.Replicas, c.Mailboxes = d.strs(), d.strs()
	c.InternalDate = d.varint()
	c.Flags = d.strs()
	c.Folder = d.str(d.uvarint())
	c.Queue = nil
	switch d.byte() {
	case 0:
	case 1:
		c.Queue = &QueuePart{From: d.str(d.uvarint()), Recipients: d.strs(), NextAttempt: d.varint()}
	default:
		return fmt.Errorf("deliver command with a bad queue marker")
	}
	return d.end("deliver command")
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// strs reads a list written by appendStrings; an empty list is nil, as
// JSON decodes an absent one.
func (d *decoder) strs() []string {
	n := d.uvarint()
	if n == 0 || d.err {
		return nil
	}
	if n > uint64(len(d.b)) { // each string takes at least one byte
		d.err = true
		return nil
	}
	out := make([]string, 0, n)
	for range n {
		out = append(out, d.str(d.uvarint()))
	}
	return out
}
