package fsm

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Message records are read in bulk (every IMAP session re-reads a folder
// that changed), so they use a compact binary encoding: decoding one is a
// few allocations instead of a JSON parse. Records written as JSON by
// earlier versions (they start with '{') still decode.
//
//	version(1) uid(4) hash(32) uvarint(size) varint(internal_date)
//	uvarint(n) n × (uvarint(len) flag)
const messageCodecV1 = 0xB1

// MarshalBinary encodes the record.
func (m Message) MarshalBinary() ([]byte, error) {
	hash, err := hex.DecodeString(m.Hash)
	if err != nil || len(hash) != 32 {
		return nil, fmt.Errorf("message uid %d: body hash %q is not a hex SHA-256", m.UID, m.Hash)
	}
	b := make([]byte, 0, 64+8*len(m.Flags))
	b = append(b, messageCodecV1)
	b = binary.BigEndian.AppendUint32(b, m.UID)
	b = append(b, hash...)
	b = binary.AppendUvarint(b, uint64(m.Size))
	b = binary.AppendVarint(b, m.InternalDate)
	b = binary.AppendUvarint(b, uint64(len(m.Flags)))
	for _, f := range m.Flags {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b, nil
}

// commonFlags are shared strings for the flags nearly every message has,
// so decoding them allocates nothing.
var commonFlags = map[string]string{`\Seen`: `\Seen`, `\Answered`: `\Answered`, `\Flagged`: `\Flagged`,
	`\Deleted`: `\Deleted`, `\Draft`: `\Draft`, "$Junk": "$Junk", "$NotJunk": "$NotJunk", "$Forwarded": "$Forwarded"}

// UnmarshalBinary decodes a record written by MarshalBinary, or a JSON one.
func (m *Message) UnmarshalBinary(b []byte) error { return m.decode(b, nil) }

// decode is UnmarshalBinary that shares the hash string and the flag
// slice of prev, an earlier decoding of the same message, where they are
// unchanged: re-reading a folder after one message changed then
// allocates for that message only. prev may be nil; it is only read.
func (m *Message) decode(b []byte, prev *Message) error {
	if isJSON(b) {
		return json.Unmarshal(b, m)
	}
	if len(b) < 1+4+32 || b[0] != messageCodecV1 {
		return fmt.Errorf("message record of %d bytes with version %x", len(b), b[:min(len(b), 1)])
	}
	m.UID = binary.BigEndian.Uint32(b[1:5])
	if prev != nil && prev.UID != m.UID {
		prev = nil
	}
	var hx [64]byte
	hex.Encode(hx[:], b[5:37])
	if prev != nil && string(hx[:]) == prev.Hash {
		m.Hash = prev.Hash
	} else {
		m.Hash = string(hx[:])
	}
	rest := b[37:]
	size, n := binary.Uvarint(rest)
	if n <= 0 {
		return fmt.Errorf("message uid %d: bad size", m.UID)
	}
	rest = rest[n:]
	date, n := binary.Varint(rest)
	if n <= 0 {
		return fmt.Errorf("message uid %d: bad date", m.UID)
	}
	rest = rest[n:]
	count, n := binary.Uvarint(rest)
	if n <= 0 || count > MaxFlags {
		return fmt.Errorf("message uid %d: bad flag count", m.UID)
	}
	rest = rest[n:]
	m.Size, m.InternalDate, m.Flags = int64(size), date, nil
	same := prev != nil && uint64(len(prev.Flags)) == count
	var flags []string
	if count > 0 && !same {
		flags = make([]string, 0, count)
	}
	for i := range count {
		l, n := binary.Uvarint(rest)
		if n <= 0 || uint64(len(rest)-n) < l {
			return fmt.Errorf("message uid %d: bad flag", m.UID)
		}
		raw := rest[n : n+int(l)]
		rest = rest[n+int(l):]
		if same && string(raw) == prev.Flags[i] {
			continue
		}
		if same { // the first difference: copy the equal ones before it
			same = false
			flags = append(make([]string, 0, count), prev.Flags[:i]...)
		}
		if f, ok := commonFlags[string(raw)]; ok {
			flags = append(flags, f)
		} else {
			flags = append(flags, string(raw))
		}
	}
	if len(rest) != 0 {
		return fmt.Errorf("message uid %d: %d trailing bytes", m.UID, len(rest))
	}
	m.Flags = flags
	if same && count > 0 {
		m.Flags = prev.Flags
	}
	return nil
}
