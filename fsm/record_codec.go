package fsm

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// Folder and body records are read and written by every Deliver on every
// replica, so they use compact binary encodings instead of JSON, which
// was a third of a replica's apply time (BenchmarkApplyDeliverBatch).
// Records written as JSON by earlier versions start with '{' and still
// decode; the next write of such a record rewrites it in binary.
//
//	folder: version(1) uvarint(len) name uvarint(id) uvarint(uid_validity)
//	        uvarint(uid_next) uvarint(len) special_use flags(1)
//	        uvarint(modseq) varint(messages) varint(bytes) varint(unseen)
//	        varint(deleted) [uvarint(low_uid) if flags has flagLowUID]
//	body:   version(1) varint(size) varint(refs) uvarint(n)
//	        n × (uvarint(len) replica) uvarint(created_index)
//	        uvarint(collecting)
const (
	folderCodecV1 = 0xF1
	bodyCodecV1   = 0xB2
)

const (
	flagSubscribed = 1
	flagLowUID     = 2 // a low_uid follows; records written before it lack one
)

// MarshalBinary encodes the record.
func (f Folder) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 48+len(f.Name)+len(f.SpecialUse))
	b = append(b, folderCodecV1)
	b = appendString(b, f.Name)
	b = binary.AppendUvarint(b, f.ID)
	b = binary.AppendUvarint(b, uint64(f.UIDValidity))
	b = binary.AppendUvarint(b, uint64(f.UIDNext))
	b = appendString(b, f.SpecialUse)
	var flags byte
	if f.Subscribed {
		flags |= flagSubscribed
	}
	if f.LowUID != 0 {
		flags |= flagLowUID
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, f.ModSeq)
	for _, v := range [...]int64{f.Messages, f.Bytes, f.Unseen, f.Deleted} {
		b = binary.AppendVarint(b, v)
	}
	if f.LowUID != 0 {
		b = binary.AppendUvarint(b, uint64(f.LowUID))
	}
	return b, nil
}

// UnmarshalBinary decodes a record written by MarshalBinary, or a JSON one.
func (f *Folder) UnmarshalBinary(b []byte) error {
	if isJSON(b) {
		return json.Unmarshal(b, f)
	}
	d := decoder{b: b}
	if v := d.byte(); v != folderCodecV1 {
		return fmt.Errorf("folder record version %x", v)
	}
	f.Name = d.str(d.uvarint())
	f.ID = d.uvarint()
	f.UIDValidity, f.UIDNext = d.uint32(), d.uint32()
	f.SpecialUse = d.str(d.uvarint())
	flags := d.byte()
	if flags&^(flagSubscribed|flagLowUID) != 0 {
		return fmt.Errorf("folder record with unknown flags %x", flags)
	}
	f.Subscribed = flags&flagSubscribed != 0
	f.ModSeq = d.uvarint()
	f.Messages, f.Bytes, f.Unseen, f.Deleted = d.varint(), d.varint(), d.varint(), d.varint()
	f.LowUID = 0
	if flags&flagLowUID != 0 {
		f.LowUID = d.uint32()
	}
	return d.end("folder")
}

// MarshalBinary encodes the record.
func (r Body) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 32+8*len(r.Replicas))
	b = append(b, bodyCodecV1)
	b = binary.AppendVarint(b, r.Size)
	b = binary.AppendVarint(b, r.Refs)
	b = appendStrings(b, r.Replicas)
	b = binary.AppendUvarint(b, r.CreatedIndex)
	return binary.AppendUvarint(b, r.Collecting), nil
}

// UnmarshalBinary decodes a record written by MarshalBinary, or a JSON one.
func (r *Body) UnmarshalBinary(b []byte) error {
	if isJSON(b) {
		return json.Unmarshal(b, r)
	}
	d := decoder{b: b}
	if v := d.byte(); v != bodyCodecV1 {
		return fmt.Errorf("body record version %x", v)
	}
	r.Size, r.Refs = d.varint(), d.varint()
	r.Replicas = d.strs()
	r.CreatedIndex, r.Collecting = d.uvarint(), d.uvarint()
	return d.end("body")
}

// isJSON reports whether a stored record is JSON, as earlier versions
// wrote it: every binary record starts with a version byte that is not
// '{'. encoding/json never calls UnmarshalBinary, so such input decodes
// straight into the value. Commands do not use it: their encoding byte
// says what the payload is, and a binary payload has no version byte.
func isJSON(b []byte) bool { return len(b) > 0 && b[0] == '{' }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// uint32 reads a uvarint that must fit 32 bits.
func (d *decoder) uint32() uint32 {
	v := d.uvarint()
	if v > 1<<32-1 {
		d.err = true
	}
	return uint32(v)
}

// end reports an overrun or trailing bytes of a record of kind.
func (d *decoder) end(kind string) error {
	if d.err {
		return fmt.Errorf("truncated %s record", kind)
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%s record with %d trailing bytes", kind, len(d.b))
	}
	return nil
}
