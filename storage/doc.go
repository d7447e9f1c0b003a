// Package storage is one node's message-body store: bodies live in Pebble,
// addressed by their SHA-256, split into checksummed chunks so that no body
// is ever held whole in memory, in either direction.
//
// Use:
//
//	w := st.NewWriter(ctx)
//	defer w.Abort()               // no-op once committed
//	io.Copy(w, body)              // chunks go to Pebble, unsynced, as they fill
//	h, n, err := w.Commit(ctx, nil) // or &expected for a replica write
//
//	r, err := st.Reader(ctx, h)   // io.ReadSeekCloser, verified as it streams
//
// Invariants (the tests check each one):
//
//   - A body is visible to Has, Reader and Verify only after its manifest's
//     batch is fsynced, and Commit returns success only after that fsync.
//     The manifest is written last, in the same batch as the last chunk; the
//     WAL is sequential, so every earlier chunk is durable too. (Pebble
//     publishes a batch before its fsync completes, so these calls take the
//     same per-hash lock that Commit holds across the fsync. Bodies, for GC
//     and scrub, does not.)
//   - A Reader never returns bytes whose chunk checksum failed. Corruption is
//     reported as an error wrapping ErrCorrupt that names the body hash (and
//     the chunk), never as data.
//   - A body's manifest and chunks are stored under one hash at most once
//     (single-instance storage); a duplicate Commit succeeds and drops the
//     new chunks, unless the stored copy fails verification, in which case
//     the new copy replaces it.
//   - Commit with an expected hash that does not match keeps nothing.
//   - Every chunk written before its Commit is covered by a pending marker
//     written in the same batch as the first such chunk. Open drops all
//     pending writes (no Writer can outlive its process), and CleanupStale
//     drops old ones that no live Writer owns. Bodies that committed but are
//     never referenced are for the layer above to delete, using
//     BodyInfo.Written from Bodies.
//   - After Pebble reports a failed WAL write or fsync, nothing that depended
//     on it is acknowledged: the Store is failed and every call returns an
//     error wrapping ErrFailed until it is reopened (Store.Reopen, or a new
//     process). Readers and Writers begun before a Reopen fail with
//     ErrFailed; they never touch the database that was closed.
//   - A chunk that would leave less than Options.MinFreeBytes free on the
//     filesystem is not written: the write fails with ErrNoSpace, and the
//     store stays usable (it is not failed).
//   - Write ids are never reused, so stale-chunk cleanup can never hit a
//     committed body.
//
// On-disk format: see keys.go (key layout, versioned by the "F" key) and
// codec.go (value encodings). DESIGN.md explains the choices.
package storage
