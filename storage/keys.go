package storage

import "encoding/binary"

// Key layout (format v1). Every key starts with a one-byte tag; integers are
// big-endian so that keys sort numerically.
//
//	"F"                          format marker, value formatV1
//	"I"                          write-id lease: uint64, ids below it may be in use
//	"S"                          counters (merge operand): bodies int64, bytes int64
//	"c" id:u64 idx:u32           chunk idx of write id: crc32c:u32 | data
//	"m" hash:[32]                manifest of a committed body (see manifest)
//	"p" id:u64                   pending write id: started unix-nanos:i64
//	"l"                          chunks may have lost their manifest: u64 (lostchunks.go)
//
// Chunks are keyed by a write id, not by hash, because the hash is known
// only after the last byte. The manifest maps the hash to the write id.
const (
	tagFormat   = 'F'
	tagIDLease  = 'I'
	tagCounters = 'S'
	tagChunk    = 'c'
	tagManifest = 'm'
	tagPending  = 'p'
	// tagLostChunks is read by releases that know it; older ones
	// ignore the key.
	tagLostChunks = 'l'

	chunkKeyLen    = 1 + 8 + 4
	manifestKeyLen = 1 + len(Hash{})
	pendingKeyLen  = 1 + 8

	// formatV1 is the value of the format key for the layout above.
	formatV1 = "powermail-storage/v1"
)

var (
	keyFormat   = []byte{tagFormat}
	keyIDLease  = []byte{tagIDLease}
	keyCounters = []byte{tagCounters}
)

func putChunkKey(dst []byte, id uint64, idx uint32) {
	dst[0] = tagChunk
	binary.BigEndian.PutUint64(dst[1:], id)
	binary.BigEndian.PutUint32(dst[9:], idx)
}

func chunkKey(id uint64, idx uint32) []byte {
	k := make([]byte, chunkKeyLen)
	putChunkKey(k, id, idx)
	return k
}

// chunkSpan returns the key range [lo, hi) that holds every chunk of id.
func chunkSpan(id uint64) (lo, hi []byte) {
	lo = []byte{tagChunk, 0, 0, 0, 0, 0, 0, 0, 0}
	hi = []byte{tagChunk, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(lo[1:], id)
	binary.BigEndian.PutUint64(hi[1:], id+1)
	return lo, hi
}

func manifestKey(h Hash) []byte {
	k := make([]byte, manifestKeyLen)
	k[0] = tagManifest
	copy(k[1:], h[:])
	return k
}

func parseManifestKey(k []byte) (Hash, bool) {
	var h Hash
	if len(k) != manifestKeyLen || k[0] != tagManifest {
		return h, false
	}
	copy(h[:], k[1:])
	return h, true
}

func pendingKey(id uint64) []byte {
	k := make([]byte, pendingKeyLen)
	k[0] = tagPending
	binary.BigEndian.PutUint64(k[1:], id)
	return k
}

func parsePendingKey(k []byte) (uint64, bool) {
	if len(k) != pendingKeyLen || k[0] != tagPending {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1:]), true
}

// tagSpan returns [lo, hi) covering every key with the given tag.
func tagSpan(tag byte) (lo, hi []byte) { return []byte{tag}, []byte{tag + 1} }
