package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// chunkHeaderLen is the size of the CRC-32C in front of every chunk value.
const chunkHeaderLen = 4

// chunkCRC covers the key as well as the data, so a chunk value that ends up
// under the wrong key (another body, another index) fails its check.
func chunkCRC(key, data []byte) uint32 {
	return crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, data)
}

// putChunk adds chunk idx of write id to b without an intermediate copy.
func putChunk(b *pebble.Batch, id uint64, idx uint32, data []byte) error {
	op := b.SetDeferred(chunkKeyLen, chunkHeaderLen+len(data))
	putChunkKey(op.Key, id, idx)
	copy(op.Value[chunkHeaderLen:], data)
	binary.BigEndian.PutUint32(op.Value, chunkCRC(op.Key, data))
	return op.Finish()
}

// decodeChunk checks a chunk value against its key and returns the data.
func decodeChunk(key, val []byte) ([]byte, bool) {
	if len(val) < chunkHeaderLen {
		return nil, false
	}
	data := val[chunkHeaderLen:]
	return data, binary.BigEndian.Uint32(val) == chunkCRC(key, data)
}

// manifest describes one committed body. Encoding (v1, 33 bytes):
//
//	version:u8=1 | size:u64 | chunkSize:u32 | id:u64 | written unix-nanos:i64 | crc32c:u32
//
// The CRC covers the manifest key (so the hash) and the preceding bytes.
// Each body records its own chunk size, so changing Options.ChunkSize never
// affects bodies already stored.
type manifest struct {
	size      int64
	chunkSize uint32
	id        uint64 // write id of the chunks; 0 for the empty body
	written   time.Time
}

const (
	manifestVersion = 1
	manifestLen     = 1 + 8 + 4 + 8 + 8 + 4
)

func (m manifest) encode(h Hash) []byte {
	v := make([]byte, manifestLen)
	v[0] = manifestVersion
	binary.BigEndian.PutUint64(v[1:], uint64(m.size))
	binary.BigEndian.PutUint32(v[9:], m.chunkSize)
	binary.BigEndian.PutUint64(v[13:], m.id)
	binary.BigEndian.PutUint64(v[21:], uint64(m.written.UnixNano()))
	crc := crc32.Update(crc32.Checksum(manifestKey(h), castagnoli), castagnoli, v[:29])
	binary.BigEndian.PutUint32(v[29:], crc)
	return v
}

func decodeManifest(h Hash, v []byte) (manifest, error) {
	if len(v) != manifestLen || v[0] != manifestVersion {
		return manifest{}, corruptf(h, "manifest has length %d version %d", len(v), firstByte(v))
	}
	crc := crc32.Update(crc32.Checksum(manifestKey(h), castagnoli), castagnoli, v[:29])
	if binary.BigEndian.Uint32(v[29:]) != crc {
		return manifest{}, corruptf(h, "manifest checksum mismatch")
	}
	m := manifest{
		size:      int64(binary.BigEndian.Uint64(v[1:])),
		chunkSize: binary.BigEndian.Uint32(v[9:]),
		id:        binary.BigEndian.Uint64(v[13:]),
		written:   time.Unix(0, int64(binary.BigEndian.Uint64(v[21:]))),
	}
	if m.size < 0 || m.chunkSize == 0 || (m.size > 0) != (m.id != 0) ||
		uint64(m.size) > uint64(m.chunkSize)*maxChunks {
		return manifest{}, corruptf(h, "manifest fields out of range (size %d, chunk size %d, id %d)", m.size, m.chunkSize, m.id)
	}
	return m, nil
}

func firstByte(v []byte) int {
	if len(v) == 0 {
		return -1
	}
	return int(v[0])
}

// maxChunks bounds the chunk index (a u32 in the key).
const maxChunks = 1<<32 - 1

// chunks returns how many chunks hold the body.
func (m manifest) chunks() uint32 {
	if m.size <= 0 || m.chunkSize == 0 {
		return 0
	}
	cs := int64(m.chunkSize)
	return uint32((m.size + cs - 1) / cs)
}

// chunkLen returns the exact length chunk idx must have.
func (m manifest) chunkLen(idx uint32) int {
	cs := int64(m.chunkSize)
	return int(min(cs, m.size-int64(idx)*cs))
}

// Counters are kept under keyCounters as merge operands so that concurrent
// commits never read-modify-write a shared key. Value: bodies:i64 | bytes:i64.
func encodeCounters(bodies, bytes int64) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, uint64(bodies))
	binary.BigEndian.PutUint64(v[8:], uint64(bytes))
	return v
}

func decodeCounters(v []byte) (bodies, bytes int64, err error) {
	if len(v) != 16 {
		return 0, 0, fmt.Errorf("%w: counters value has %d bytes", ErrCorrupt, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:])), nil
}

// counterMerger sums counter operands; addition is associative and
// commutative, so MergeNewer and MergeOlder are the same.
type counterMerger struct{ bodies, bytes int64 }

func (c *counterMerger) add(v []byte) error {
	b, n, err := decodeCounters(v)
	c.bodies += b
	c.bytes += n
	return err
}

func (c *counterMerger) MergeNewer(v []byte) error { return c.add(v) }
func (c *counterMerger) MergeOlder(v []byte) error { return c.add(v) }

func (c *counterMerger) Finish(bool) ([]byte, io.Closer, error) {
	return encodeCounters(c.bodies, c.bytes), nil, nil
}

// newMerger returns the Pebble merger for this store. Its name is recorded
// by Pebble; a store opened with another merger name is refused.
func newMerger() *pebble.Merger {
	return &pebble.Merger{
		Name: "powermail.storage.counters.v1",
		Merge: func(key, value []byte) (pebble.ValueMerger, error) {
			if len(key) != 1 || key[0] != tagCounters {
				return nil, fmt.Errorf("%w: merge operand on key %q", ErrCorrupt, key)
			}
			m := &counterMerger{}
			return m, m.add(value)
		},
	}
}
