package fsm

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
)

// Message index and body references.
//
//	"m\x00" domain "\x00" local "\x00" folderID(8, BE) uid(4, BE)   Message
//	"r\x00" hash(32)                                               Body
//
// Big-endian IDs make a folder's messages one prefix scan in UID order.

// Message is one message in one folder. The body lives in the body store,
// named by its hash.
type Message struct {
	UID          uint32   `json:"uid"`
	Hash         string   `json:"hash"` // hex SHA-256 of the body
	Size         int64    `json:"size"`
	InternalDate int64    `json:"internal_date"` // unix milliseconds
	Flags        []string `json:"flags,omitempty"`
}

// Body is the cluster's record of one stored body: where its replicas are
// and how many messages reference it. Its binary codec (record_codec.go)
// is promoted to types that embed it (BodyRecord, node's BodyView), and
// would drop their other fields: such types are encoded as JSON only.
type Body struct {
	Size         int64    `json:"size"`
	Refs         int64    `json:"refs"`
	Replicas     []string `json:"replicas"` // node IDs holding a verified copy
	CreatedIndex uint64   `json:"created_index"`
	// Collecting is the index of the BodyCollect that started deleting
	// this unreferenced body's copies (0: not being collected).
	Collecting uint64 `json:"collecting,omitempty"`
}

func messagePrefix(a Address, folderID uint64) []byte {
	k := []byte("m\x00" + addrPart(a) + "\x00")
	return binary.BigEndian.AppendUint64(k, folderID)
}

func messageKey(a Address, folderID uint64, uid uint32) []byte {
	return binary.BigEndian.AppendUint32(messagePrefix(a, folderID), uid)
}

func bodyKey(hash []byte) []byte { return append([]byte("r\x00"), hash...) }

// parseHash decodes a hex SHA-256.
func parseHash(h string) ([]byte, error) {
	raw, err := hex.DecodeString(h)
	if err != nil || len(raw) != 32 {
		return nil, errorf(ErrInvalid, "body hash %q is not a hex SHA-256", h)
	}
	return raw, nil
}

// MaxFlags bounds the flags of one message (RFC 9051 leaves it open).
const MaxFlags = 64

// cleanFlags sorts flags and drops duplicates, then refuses a set of more
// than MaxFlags. Counting before dropping duplicates would refuse a union
// such as +FLAGS of keywords a message already has.
func cleanFlags(flags []string) ([]string, error) {
	out := slices.Clone(flags)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxFlags {
		return nil, errorf(ErrInvalid, "%d flags, at most %d", len(out), MaxFlags)
	}
	return out, nil
}

func (m Message) String() string { return fmt.Sprintf("uid %d body %s", m.UID, m.Hash) }
