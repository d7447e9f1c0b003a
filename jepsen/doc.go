// Package jepsen is PowerMail's fault-injection harness. It drives the
// built powermail binary from outside, as operators and clients do: it
// starts a cluster of real processes on loopback ([StartCluster]), each
// behind a TCP proxy on its cluster port ([Net]), injects faults with a
// [Nemesis] (kill -9 and restart, SIGSTOP and SIGCONT, partitions, slow
// links, cluster remove and re-join with a wiped data directory, a damaged
// body replica), runs a mail [Workload] (SMTP deliveries, admin-API, IMAP
// and POP3 reads, IMAP APPEND and flag STOREs, POP3 DELE, directory writes,
// all through random nodes), records every operation in a check.Recorder,
// verifies redundancy with "powermail storage verify", and judges the
// history with the checkers of powermail/jepsen/check. [Run] does all of
// that for one [Config]; cmd/jepsen is its command line.
//
// Invariants the harness keeps, so that a violation is PowerMail's and not
// the harness's:
//
//   - One fault at a time, and a fault starts only when every node is
//     ready and the cluster reports itself healthy; a membership change or
//     a corruption starts only when every body verifies on R replicas. With
//     three or five nodes and R=2 at most a minority of nodes, and fewer
//     than R replicas of any body, is ever lost, so every acknowledged
//     message must stay stored and readable.
//   - Every delivery attempt has its own Message-ID and is never retried.
//     An error before the message text is sent is a fail; a reply code to
//     the final dot is ok (250) or fail; a timeout or lost connection after
//     the text began is info. Writes whose failure may follow a commit the
//     server lost track of (IMAP NO to APPEND or STORE, admin 5xx) are info.
//   - A read lists a whole mailbox as of one instant inside the op: one
//     admin listing request (behind the read barrier), an IMAP SELECT
//     (messages at or above its UIDNEXT are left out), or a POP3 login.
//   - A flag STORE is preceded by NOOP, so that the session knows the
//     message (UID STORE silently skips UIDs a session was not told
//     about); a store whose response lacks the message is a fail.
//   - Final reads run after the nemesis has stopped and the cluster has
//     healed, through every node, and are retried until they succeed.
//
// The package keeps no global state; one test process may run several
// clusters.
package jepsen
