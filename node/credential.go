package node

import (
	"crypto/sha256"
	"encoding/binary"
)

// Login is a password login that succeeded: the mailbox's canonical
// address, and which of its passwords it used. A session keeps it and
// hands it to AccountActive, which ends the session once the mailbox is
// disabled or removed or its password changed.
type Login struct {
	Address string
	// Credential is a fingerprint of the stored password hash the login
	// matched (CredentialOf): 8 bytes that tell one stored hash from
	// another and say nothing about the password. The hash itself is
	// not kept.
	Credential uint64
}

// CredentialOf fingerprints a stored password hash (a PHC string, or ""
// for no password): the first 8 bytes of its SHA-256. A new password,
// even the same one set again, is hashed with a new salt and so gets a
// new fingerprint; a change of the mailbox's quota or enabled state
// leaves the hash, and the fingerprint, as they were. The node never
// rewrites a stored hash by itself (there is no rehash at login when
// the cost parameters change), so nothing but setting a password moves
// it.
//
// The same on every node, so a login checked by one node is judged
// alike by another (a frontend may be given different ones for
// Authenticate and AccountActive). SHA-256 of a hash string of about
// 100 bytes is well under a microsecond, beside AccountActive's reads.
func CredentialOf(hash string) uint64 {
	var buf [credentialBuf]byte // on the stack: no allocation for a usual hash
	sum := sha256.Sum256(append(buf[:0], hash...))
	return binary.BigEndian.Uint64(sum[:8])
}

// credentialBuf holds an argon2id PHC string at the largest salt and
// tag fsm admits (about 200 bytes) and any bcrypt hash (60).
const credentialBuf = 256
