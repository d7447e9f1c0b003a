package fsm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// Snapshot format: the magic line, then records of
// uvarint(len key) key uvarint(len value) value, then a zero-length key as
// terminator and the CRC-32C (big endian) of everything before it. Every
// key of the state, the applied index included, is a record, so a restored
// state is byte-for-byte the state that was snapshotted.
const snapshotMagic = "POWERMAIL-FSM-SNAPSHOT v1\n"

// snapshotMagicV2 heads the snapshot of a state whose command encoding is
// 4 or more. The records are the same, but a release before encoding 4
// would install such a state, ignore what it does not know (the
// UIDVALIDITY counter) and apply later entries by the old rules: a
// replica that diverges and looks healthy. It refuses this header
// instead, and so stops until it is upgraded, as it stops on an entry
// in encoding 4.
const snapshotMagicV2 = "POWERMAIL-FSM-SNAPSHOT v2\n"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Snapshot is a consistent point-in-time view of the state.
type Snapshot struct {
	snap *pebble.Snapshot
}

// Snapshot captures the current state. The caller must Release it.
func (s *State) Snapshot() (*Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	return &Snapshot{snap: s.db.NewSnapshot()}, nil
}

// Release frees the view.
func (sn *Snapshot) Release() { _ = sn.snap.Close() }

// WriteTo streams the view to w.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	crc := crc32.New(castagnoli)
	cw := &countWriter{w: io.MultiWriter(w, crc)}
	bw := bufio.NewWriterSize(cw, 256<<10)
	magic := snapshotMagic
	if s, err := readSettings(sn.snap); err != nil {
		return 0, fmt.Errorf("write snapshot: %w", err)
	} else if s.CommandEncoding >= EncodingJSON4 {
		magic = snapshotMagicV2
	}
	if _, err := bw.WriteString(magic); err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	it, err := sn.snap.NewIter(nil)
	if err != nil {
		return cw.n, fmt.Errorf("iterate snapshot: %w", err)
	}
	var lenBuf [binary.MaxVarintLen64]byte
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return cw.n, fmt.Errorf("read snapshot value: %w", err)
		}
		for _, part := range [][]byte{it.Key(), v} {
			bw.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(part)))])
			bw.Write(part)
		}
	}
	if err := it.Close(); err != nil {
		return cw.n, fmt.Errorf("iterate snapshot: %w", err)
	}
	bw.WriteByte(0)
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	n, err := w.Write(sum[:])
	return cw.n + int64(n), err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ErrBadSnapshot reports a snapshot stream that is truncated or corrupt.
var ErrBadSnapshot = errors.New("bad snapshot")

// ErrStateEncoding reports a state (a snapshot, or the directory Open
// finds) at a command encoding this release does not read.
var ErrStateEncoding = errors.New("the state's command encoding is newer than this release reads")

// Restore replaces the whole state with the snapshot read from r. The new
// state is built in a fresh directory and swapped in only when complete
// and synced, so a crash during Restore leaves the old state intact.
func (s *State) Restore(r io.Reader) error {
	name, db, err := s.buildFromSnapshot(r)
	if err != nil {
		return err
	}
	idx, err := readApplied(db)
	ids := newRecentIDs()
	if err == nil {
		err = ids.load(db)
	}
	if err != nil {
		db.Close()
		return err
	}
	s.mu.Lock()
	old := s.db
	s.closeViews() // they read old, closed below
	if err := writeCurrent(s.dir, name); err != nil {
		s.mu.Unlock()
		db.Close()
		return err
	}
	s.db = db
	s.ids = ids // with the store it describes, before any apply on it
	s.dueLow.Store(0)
	bodies := &bodyFilter{}
	s.bodies = bodies // unbuilt: reads go to the new store until it is
	s.applied.Store(idx)
	s.changes.reset(idx)
	s.hot.invalidate()
	s.mu.Unlock()
	go s.rebuildBodies(bodies)
	if old != nil {
		old.Close()
	}
	removeStale(s.dir, name, s.log)
	s.wake()
	if s.opts.OnRestore != nil {
		s.opts.OnRestore()
	}
	return nil
}

func (s *State) buildFromSnapshot(r io.Reader) (string, *pebble.DB, error) {
	name, err := nextStateName(s.dir)
	if err != nil {
		return "", nil, err
	}
	db, err := openPebble(filepath.Join(s.dir, name), s.opts)
	if err != nil {
		return "", nil, err
	}
	err = loadSnapshot(db, r)
	if err == nil {
		err = checkStateEncoding(db)
	}
	if err != nil {
		db.Close()
		os.RemoveAll(filepath.Join(s.dir, name))
		return "", nil, err
	}
	return name, db, nil
}

// checkStateEncoding refuses a state whose command encoding this
// release does not read. A later release may store records this one
// would rewrite by its own rules on the next entry it can decode (the
// snapshot header stops only releases before encoding 4), so such a
// replica would diverge looking healthy; refused, it stays behind until
// upgraded.
func checkStateEncoding(db *pebble.DB) error {
	st, err := readSettings(db)
	if err != nil {
		return fmt.Errorf("check state encoding: %w", err)
	}
	if st.CommandEncoding > NewestEncoding {
		return fmt.Errorf("%w: encoding %d, this release reads up to %d", ErrStateEncoding, st.CommandEncoding, NewestEncoding)
	}
	return nil
}

// restoreBatchBytes is how much of a snapshot Restore writes to the new
// store in one batch. The batch is allocated at that size (plus a
// record's worth of slack) up front, rather than grown by doubling from
// empty, which allocated about twice each batch's bytes again.
const (
	restoreBatchBytes = 4 << 20
	restoreBatchSlack = 64 << 10
)

func loadSnapshot(db *pebble.DB, r io.Reader) error {
	raw := bufio.NewReaderSize(r, 256<<10)
	br := &crcReader{r: raw, crc: crc32.New(castagnoli)}
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || (string(magic) != snapshotMagic && string(magic) != snapshotMagicV2) {
		return fmt.Errorf("%w: missing header", ErrBadSnapshot)
	}
	b := db.NewBatchWithSize(restoreBatchBytes + restoreBatchSlack)
	var key, val []byte // reused: Set copies them into the batch
	for {
		var err error
		if key, err = readChunk(br, key); err != nil {
			b.Close()
			return err
		}
		if len(key) == 0 {
			break
		}
		if val, err = readChunk(br, val); err != nil {
			b.Close()
			return err
		}
		b.Set(key, val, nil)
		if b.Len() >= restoreBatchBytes {
			if err := b.Commit(pebble.NoSync); err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			b = db.NewBatchWithSize(restoreBatchBytes + restoreBatchSlack)
		}
	}
	var sum [4]byte
	if _, err := io.ReadFull(raw, sum[:]); err != nil || binary.BigEndian.Uint32(sum[:]) != br.crc.Sum32() {
		b.Close()
		return fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// crcReader checksums exactly the bytes the parser consumes.
type crcReader struct {
	r   *bufio.Reader
	crc hash.Hash32
	one [1]byte // ReadByte's byte, summed without an allocation each
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	return n, err
}

func (c *crcReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.one[0] = b
		c.crc.Write(c.one[:])
	}
	return b, err
}

// readChunk reads one length-prefixed chunk into buf, grown if it is too
// small, and returns it; the caller may reuse it for the next chunk.
func readChunk(br *crcReader, buf []byte) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if n > 64<<20 {
		return nil, fmt.Errorf("%w: record of %d bytes", ErrBadSnapshot, n)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	return buf, nil
}

// Directory handling: dir/CURRENT names the live state directory.

func openPebble(path string, o Options) (*pebble.DB, error) {
	c := pebble.NewCache(o.CacheBytes)
	defer c.Unref()
	opts := &pebble.Options{Cache: c, Logger: pebbleLogger{log: o.Logger}, FS: o.fs, MemTableSize: o.MemTableBytes}
	// Bloom filters make the common RCPT-time miss (is there a forward for
	// this address?) skip the data blocks entirely.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(path, opts)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return db, nil
}

func openCurrent(dir string, o Options) (*pebble.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "CURRENT"))
	name := strings.TrimSpace(string(raw))
	if errors.Is(err, os.ErrNotExist) {
		name = "state-1"
		if err := writeCurrent(dir, name); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("read %s/CURRENT: %w", dir, err)
	}
	removeStale(dir, name, nil)
	return openPebble(filepath.Join(dir, name), o)
}

func writeCurrent(dir, name string) error {
	tmp := filepath.Join(dir, "CURRENT.tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write CURRENT: %w", err)
	}
	if _, err := f.WriteString(name + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("write CURRENT: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync CURRENT: %w", err)
	}
	f.Close()
	if err := os.Rename(tmp, filepath.Join(dir, "CURRENT")); err != nil {
		return fmt.Errorf("install CURRENT: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	return d.Sync()
}

func nextStateName(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("list %s: %w", dir, err)
	}
	max := 0
	for _, e := range ents {
		var n int
		if _, err := fmt.Sscanf(e.Name(), "state-%d", &n); err == nil && n > max {
			max = n
		}
	}
	return fmt.Sprintf("state-%d", max+1), nil
}

// removeStale deletes state directories other than the live one: leftovers
// of a replaced state or of a restore that crashed.
func removeStale(dir, live string, log interface{ Warn(string, ...any) }) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), "state-") && e.Name() != live {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil && log != nil {
				log.Warn("remove stale state", "dir", e.Name(), "err", err)
			}
		}
	}
}

// pebbleLogger keeps Pebble's informational chatter out of the node log
// but passes on its errors: a flush or compaction that fails (a full
// disk, an I/O error) is retried in the background and reported only
// through Errorf, and an operator must see it before the memtables fill
// and writes stall. Fatalf (a failed WAL write, a MANIFEST it cannot
// write) panics: a state that cannot record an applied entry must stop
// the node rather than diverge.
type pebbleLogger struct{ log *slog.Logger }

func (pebbleLogger) Infof(string, ...any) {}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("state store: pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("state store: pebble fatal error, stopping", "err", msg)
	panic(msg)
}
