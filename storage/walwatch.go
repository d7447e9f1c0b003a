package storage

import (
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// walWatchFS is the filesystem Pebble gets: it reports the first failed
// write or sync of a WAL file the moment the filesystem returns it.
//
// Pebble writes its WAL on a goroutine of its own and reports a failure
// only to commits waiting for a sync. A commit that does not wait (a
// Writer's spilled chunk) returns before its bytes are written, and once
// the log writer holds the error, the next commit meets it as a raw panic
// raised with Pebble's commit pipeline locked (pebble v2.1.3,
// DB.commitWrite): not a Fatalf, so nothing recovers it, and every later
// commit and DB.Close wait for that lock for ever. So the Store fails at
// the failed write itself, and Store.commit refuses from then on, before
// Pebble is asked (see walBroken).
type walWatchFS struct {
	vfs.FS
	onFail func(error)
}

// walFileSuffix names Pebble's WAL files (NNNNNN.log).
const walFileSuffix = ".log"

func (fs walWatchFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	return fs.watch(name, f, err)
}

func (fs walWatchFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return fs.watch(newname, f, err)
}

func (fs walWatchFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, category, opts...)
	return fs.watch(name, f, err)
}

func (fs walWatchFS) watch(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, walFileSuffix) {
		return f, err
	}
	return walFile{File: f, name: name, onFail: fs.onFail}, nil
}

// walFile is one WAL file under watch.
type walFile struct {
	vfs.File
	name   string
	onFail func(error)
}

func (f walFile) failed(op string, err error) {
	if err != nil {
		f.onFail(fmt.Errorf("%s %s: %w", op, f.name, err))
	}
}

func (f walFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.failed("write", err)
	return n, err
}

func (f walFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	f.failed("write", err)
	return n, err
}

func (f walFile) Sync() error {
	err := f.File.Sync()
	f.failed("sync", err)
	return err
}

func (f walFile) SyncData() error {
	err := f.File.SyncData()
	f.failed("sync", err)
	return err
}

func (f walFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	f.failed("sync", err)
	return full, err
}

// walFailed fails the Store at a failed WAL write or sync (walWatchFS).
func (s *Store) walFailed(err error) {
	fe := &fatalError{msg: "WAL: " + err.Error(), cause: err}
	s.log.Error("WAL write failed, store failed until reopened", "err", err)
	s.walBroken.CompareAndSwap(nil, fe)
	s.setFailed(fe)
}
