// Package jepsen is PowerMail's fault-injection harness. It drives the
// built powermail binary from outside, as operators and clients do: it
// starts a cluster of real processes on loopback ([StartCluster]), injects
// faults with a [Nemesis] (kill -9 and restart, SIGSTOP and SIGCONT), runs a
// mail [Workload] (SMTP deliveries and admin-API reads through random
// nodes), records every operation in a check.Recorder, and judges the
// history with the checkers of powermail/jepsen/check. [Run] does all of
// that for one [Config]; cmd/jepsen is its command line.
//
// Invariants the harness keeps, so that a violation is PowerMail's and not
// the harness's:
//
//   - At most one node is faulted at a time, and a fault starts only when
//     every node is ready and the cluster reports itself healthy. With three
//     or five nodes and R=2 that is a minority and fewer than R nodes, so
//     every acknowledged message must stay stored and readable.
//   - Every delivery attempt has its own Message-ID and is never retried.
//     An error before the message text is sent is a fail; a reply code to
//     the final dot is ok (250) or fail; a timeout or lost connection after
//     the text began is info.
//   - A read is one listing request (it passes the node's read-index
//     barrier), so it is the mailbox as of one instant inside the op.
//   - Final reads run after the nemesis has stopped and the cluster has
//     healed, through every node, and are retried until they succeed.
//
// The package keeps no global state; one test process may run several
// clusters.
package jepsen
