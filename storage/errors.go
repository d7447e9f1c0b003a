package storage

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package that has one of
// these causes wraps it, so check with errors.Is.
var (
	// ErrNotFound: no committed body has this hash.
	ErrNotFound = errors.New("storage: body not found")
	// ErrCorrupt: stored data failed a checksum or a structural check. The
	// message names the body hash and, where known, the chunk.
	ErrCorrupt = errors.New("storage: corrupt data")
	// ErrHashMismatch: Commit was given an expected hash that the streamed
	// bytes do not have. Nothing was kept.
	ErrHashMismatch = errors.New("storage: body hash mismatch")
	// ErrClosed: the Store (or the Reader) is closed.
	ErrClosed = errors.New("storage: closed")
	// ErrFailed: a write or fsync failed at the Pebble level. What is on disk
	// is unknown until the store is reopened, so the Store refuses every
	// further operation. Reopen it (or Close it and Open it again).
	ErrFailed = errors.New("storage: store failed, reopen required")
	// ErrWriterDone: the Writer was already committed or aborted.
	ErrWriterDone = errors.New("storage: writer already finished")
	// ErrFormat: the directory holds data in a format this code cannot read.
	ErrFormat = errors.New("storage: unsupported on-disk format")
	// ErrInvalidHash: ParseHash was given something that is not 64 hex digits.
	ErrInvalidHash = errors.New("storage: invalid hash")
	// ErrTooLarge: a body would need more chunks than the key layout allows.
	ErrTooLarge = errors.New("storage: body too large")
	// ErrNoSpace: the write would leave less free space on the store's
	// filesystem than Options.MinFreeBytes. Nothing was written, and the
	// store stays usable: retry once space is freed.
	ErrNoSpace = errors.New("storage: not enough free disk space")
	// ErrInvalidOptions: Options are out of range.
	ErrInvalidOptions = errors.New("storage: invalid options")
)

// corruptf returns an error wrapping ErrCorrupt that names the body.
func corruptf(h Hash, format string, args ...any) error {
	return fmt.Errorf("%w: body %s: %s", ErrCorrupt, h, fmt.Sprintf(format, args...))
}

// chunkCorruptf returns an error wrapping ErrCorrupt that names the body and
// the chunk.
func chunkCorruptf(h Hash, idx uint32, format string, args ...any) error {
	return fmt.Errorf("%w: body %s chunk %d: %s", ErrCorrupt, h, idx, fmt.Sprintf(format, args...))
}
