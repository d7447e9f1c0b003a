package fsm

import (
	"encoding/binary"
	"fmt"
)

// Mailbox records are read on every RCPT, so they use a compact binary
// encoding instead of JSON: one allocation to decode (the address) and
// about half the bytes, which keeps a million of them in the block cache.
//
//	version(1) uvarint(len) address varint(quota) varint(used)
//	varint(messages) flags(1) uvarint(created_index) uvarint(next_folder_id)
const mailboxCodecV1 = 1

// The flags byte. flagRemoving is written only by a MailboxUpdate of
// command encoding 10, which a release before it does not apply.
const (
	flagDisabled = 1 << iota
	flagHasForward
	flagRemoving
)

// MarshalBinary encodes the record (without its password hash, which is
// stored under its own key).
func (m Mailbox) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 32+len(m.Address))
	b = append(b, mailboxCodecV1)
	b = binary.AppendUvarint(b, uint64(len(m.Address)))
	b = append(b, m.Address...)
	b = binary.AppendVarint(b, m.QuotaBytes)
	b = binary.AppendVarint(b, m.UsedBytes)
	b = binary.AppendVarint(b, m.Messages)
	var flags byte
	if m.Disabled {
		flags |= flagDisabled
	}
	if m.HasForward {
		flags |= flagHasForward
	}
	if m.Removing {
		flags |= flagRemoving
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, m.CreatedIndex)
	return binary.AppendUvarint(b, m.NextFolderID), nil
}

// UnmarshalBinary decodes a record written by MarshalBinary.
func (m *Mailbox) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	if v := d.byte(); v != mailboxCodecV1 {
		return fmt.Errorf("mailbox record version %d", v)
	}
	n := d.uvarint()
	m.Address = d.str(n)
	m.QuotaBytes, m.UsedBytes, m.Messages = d.varint(), d.varint(), d.varint()
	flags := d.byte()
	m.Disabled, m.HasForward = flags&flagDisabled != 0, flags&flagHasForward != 0
	m.Removing = flags&flagRemoving != 0
	m.CreatedIndex, m.NextFolderID = d.uvarint(), d.uvarint()
	if d.err {
		return fmt.Errorf("truncated mailbox record")
	}
	return nil
}

// decoder reads varints from a byte slice, remembering any overrun.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.err = true
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str(n uint64) string {
	if uint64(len(d.b)) < n {
		d.err = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
