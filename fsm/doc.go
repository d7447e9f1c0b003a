// Package fsm is PowerMail's replicated directory: the deterministic state
// machine that every cluster member applies in raft log order.
//
// It holds domains, mailboxes (with their folders), forwards, cluster
// members and cluster settings. It knows nothing of raft transport or of the
// protocols; package node feeds it committed entries and reads from it.
//
// Invariants:
//
//   - State lives in Pebble, never in Go maps, so it scales past RAM and a
//     restart does not replay history.
//   - Apply is idempotent by raft index: the applied index is written in the
//     same Pebble batch as the entry's effects, and an entry at or below it
//     is skipped.
//   - A command either changes state as a whole or, when it fails
//     validation, changes nothing but the applied index. Validation errors
//     are returned as values (see Error); they are business outcomes, not
//     faults.
//   - An entry that cannot be decoded panics: a replica that diverges from
//     the log is worse than one that stops.
//   - Every result of Apply depends only on the state and the command, never
//     on the clock or the local node, so all replicas agree.
//   - The one piece of state in memory, the change log (changelog.go), is a
//     read accelerator: every message write is logged before its batch
//     commits, and a reader it cannot serve exactly scans Pebble instead.
package fsm
