// Package frontend speaks the client protocols: SMTP and LMTP delivery
// (RFC 5321, RFC 2033) on top of github.com/emersion/go-smtp, IMAP and
// POP3. It reaches the cluster only through the narrow Deliverer and
// MailStore interfaces that *node.Node implements, and never touches raft,
// fsm or storage types. DESIGN.md explains the shape and lists every reply
// code.
//
// POP3 (RFC 1939, 2449, 2595, 5034) is hand-written in pop3*.go: POP3Server
// reads the INBOX through MailStore under a cluster-wide maildrop lock, and
// commits deletions only on QUIT (DESIGN.md, section POP3).
//
// IMAP (RFC 9051 and RFC 3501, with IDLE, MOVE, UIDPLUS, NAMESPACE,
// SPECIAL-USE, LIST-EXTENDED/LIST-STATUS, ESEARCH/SEARCHRES, BINARY,
// LITERAL+, APPENDLIMIT) is IMAPServer in imap*.go, on go-imap v2's
// imapserver: each session keeps its own snapshot of the selected folder
// and reports other sessions' changes only as EXISTS, EXPUNGE and FETCH
// FLAGS at the times the protocol allows (DESIGN.md, section IMAP).
//
// Invariants (each is tested):
//
//   - A 250 after the final dot (or an LMTP recipient's 250) is sent only
//     after Deliver returned nil having read the whole body, so it names a
//     message the cluster holds durably (Promise 1, RFC 5321 §4.2.5).
//   - No plain error ever reaches go-smtp: every Session method returns nil
//     or an *smtp.SMTPError built in replies.go. go-smtp would turn a plain
//     error after DATA into a permanent 554 (Promise 2).
//   - Anything a retry could fix gets a 4xx: backend errors that are not
//     one of node's permanent sentinels, timeouts, lost connections.
//   - Recipients are refused at RCPT; nothing is accepted and bounced
//     later. A domain that is not local is refused whoever the sender is:
//     the server is never an open relay (Promise 6).
//   - Each transaction makes at most one Deliver call, with the union of
//     its recipients' mailboxes, each listed once (Promise 5).
//   - The body is streamed; no message is held in memory whole.
//   - Every backend call gets a context with a deadline, cancelled when the
//     connection ends or the server is closed.
//   - Session state is guarded by a mutex: go-smtp runs Data on its own
//     goroutine for BDAT and may call Logout from Close.
//   - No package-level mutable state: a test process can run many servers.
package frontend
