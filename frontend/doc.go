// Package frontend will speak SMTP, LMTP, IMAP and POP3 to mail clients
// through the narrow interface that package node provides (deliver, read,
// change flags, authenticate, watch a mailbox). It never touches raft
// types. Nothing is implemented here yet; see the delivery and access
// issues.
package frontend
