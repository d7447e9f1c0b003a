// Package check holds the history model and the checkers of PowerMail's
// Jepsen-style fault-injection harness.
//
// The harness runs real powermail processes, injects faults and drives
// workloads through random nodes. Every client action is recorded as an
// invoke [Op] followed by exactly one completion (OK, Fail or Info) from the
// same process. A [History] is that sequence; it is stored as JSON lines so
// that a run can be re-checked offline. Timeouts and lost connections must be
// recorded as Info: an Info operation may or may not have taken effect, at
// any time after its invocation. Fail means "definitely had no effect". An
// invocation without a completion is treated as Info.
//
// Times are nanoseconds on one monotonic clock shared by all processes (the
// harness is a single OS process). An operation took effect at some instant
// between its invoke time and its completion time.
//
// # Checkers and what they guarantee
//
// [CheckSetFull] (promises 1 and 3: acknowledged mail is never lost; any
// node sees every message acknowledged before the read began). A message is
// a (mailbox, message-ID) pair. It becomes "known" when a delivery of it is
// acknowledged or when any read returns it. Every OK read that began after
// the message became known, and completed before any non-failed deletion of
// it was invoked, must contain it: a non-final read that misses it is
// "stale" (counted per read and message), a final read (Op.Final) that
// misses it makes the message "lost" (counted per message). A read
// containing a message more often than it was attempted (by non-failed
// attempts invoked before the read ended) is "duplicated"; a message that no non-failed delivery could have produced is "unexpected".
// A message whose deletion could have taken effect is never lost. A message
// with a single delivery attempt that surely existed (acknowledged or
// listed) before any deletion of it was invoked, and was then
// acknowledged-deleted, must not be visible to reads that began after the
// deletion was acknowledged (also counted as "stale"); the attempt may
// have timed out, since one attempt adds at most one copy. Acknowledged messages
// that no final read could check are "never_read" and make the result
// invalid, so a harness that forgot its final reads cannot pass.
//
// [CheckUIDs] (promise 4: UIDs strictly ascend across leader changes and
// restarts, are never reused, UIDVALIDITY does not change). Violations: more
// than one UIDVALIDITY for a mailbox; one UID naming two message IDs (also
// across expunges: UIDs are never reused); one message ID holding more
// distinct UIDs than it had delivery attempts invoked before they were seen;
// a UID listed twice in one read; a delivery acknowledged before another
// delivery was invoked that got the higher UID ("uid_order"); and
// "uid_regression": a read R2 that began after a read R1 completed contains
// a UID below R1's highest UID that R1 did not contain (such a UID must
// either predate R1, and then R1 would have listed it, or postdate R1, and
// then it would be higher than everything R1 saw), or reports a UIDNEXT at
// or below a UID or UIDNEXT seen by R1.
//
// [CheckDirectory] and [CheckFlags] (linearizability, checked with
// porcupine, partitioned by key). The directory model is one boolean per
// mailbox key: dir-add succeeds only when absent and otherwise fails with
// [ErrExists]; dir-remove succeeds only when present and otherwise fails
// with [ErrNotFound]; dir-read returns presence. The flag model is one flag
// set per (mailbox, message-ID): store-flags with mode add, remove or set,
// and read-flags returning the whole set. Info operations are given a
// return time after the end of the history, so porcupine may place their
// effect anywhere after their invocation (or effectively never). Fail
// operations without a meaningful error code are dropped, since they had no
// effect. Reads whose outcome is unknown constrain nothing and are dropped.
//
// [CheckForwards] (issue 7: a forward acknowledged with 250 reaches the
// other provider, SRS-rewritten and intact, at least once; more than once
// only after a lost acknowledgement or a disturbance of the node working
// the queue). Arrivals are recorded by the remote server itself; fault
// windows come from the nemesis's ops and leader changes from the
// harness's leader polls, both on negative processes.
//
// [CheckReplication] (promise 1's "W replicas"): every body hash must have
// verified replicas on at least R distinct nodes, and must not be one the
// cluster's own verification found short.
//
// # Soundness assumptions
//
//   - Message IDs are unique per delivery attempt, or, when the harness
//     retries with the same ID, every attempt is recorded as its own op. Each
//     non-failed attempt may add at most one copy to each recipient mailbox.
//   - A read op lists the whole mailbox (every UID and message ID) as of one
//     instant between its invoke and completion. For POP3 the invoke must be
//     recorded before the session opens, because POP3 shows the maildrop as
//     of login.
//   - Mailboxes used by the mail workloads are not removed and re-created
//     during a run (that would legitimately change UIDVALIDITY).
//   - Messages used by the flag workload are delivered once per mailbox,
//     so that (mailbox, message-ID) names a single message.
//   - Directory keys start absent; a message's flags start as the flags of
//     its delivery (none for SMTP). Flags compare case-insensitively and
//     \Recent is ignored.
//   - Stale and lost verdicts rely on linearizable reads (promise 3). A
//     stale read reported by one checker may therefore also show up as a
//     uid_regression in [CheckUIDs]; both point at the same bug.
//
// The package keeps no global state; every checker is a pure function of
// its input.
package check
