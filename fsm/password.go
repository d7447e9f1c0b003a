package fsm

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Password hashes are stored in PHC string form. New passwords get
// argon2id (RFC 9106) with the OWASP-recommended minimum cost; bcrypt
// hashes ("$2a$", "$2b$", "$2y$") are accepted for imports from other
// systems. Plain text is never stored.

const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// ErrBadPasswordHash reports a stored or supplied hash in no known format.
var ErrBadPasswordHash = errors.New("unsupported password hash")

// MaxPasswordLen bounds a password, keeping hashing cost bounded.
const MaxPasswordLen = 1024

// HashPassword returns an argon2id hash of pw.
func HashPassword(pw string) (string, error) {
	if pw == "" || len(pw) > MaxPasswordLen {
		return "", errorf(ErrInvalid, "a password has 1 to %d bytes", MaxPasswordLen)
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Limits on the hashes CheckPasswordHash admits. A stored hash is
// checked at every login, so its cost is paid by the node each time
// anyone tries the mailbox: these keep one check near a second of one
// core at worst, and within the memory the nodes set aside for password
// checks.
const (
	// MaxArgonMemory (KiB) is 64 MiB: RFC 9106 section 4's second
	// recommended option, PHP's and libsodium's interactive default, and
	// half of node.DefaultPasswordMemory, so that two such checks fit the
	// default budget at once (a larger one would run alone, holding every
	// other login up; one of 2 GiB, RFC 9106's first option, could not run
	// at all).
	MaxArgonMemory = 64 << 10
	// MaxArgonTime bounds argon2id's passes (t): 16 passes over 64 MiB
	// take about a second.
	MaxArgonTime = 16
	// MaxArgonThreads bounds argon2id's lanes (p), each a goroutine
	// during the check. RFC 9106 recommends 4.
	MaxArgonThreads = 16
	// MaxBcryptCost is bcrypt cost 14, about a second per check; each
	// step doubles it, so 31, which bcrypt itself allows, is days.
	// Imports usually carry 10 to 12.
	MaxBcryptCost = 14

	// Salt and tag lengths in bytes: RFC 9106 section 3.1's minimums (8
	// and 4), and a cap far above what any system writes (16 and 32).
	minArgonSalt, maxArgonSalt = 8, 64
	minArgonKey, maxArgonKey   = 4, 64
)

// CheckPasswordHash accepts "" (no password: login disabled), and
// argon2id and bcrypt hashes whose cost is within the limits above. A
// node checks a hash with it before it proposes a mailbox command (the
// state machine itself applies admitStored).
func CheckPasswordHash(h string) error {
	if h == "" {
		return nil
	}
	if isBcrypt(h) {
		return checkBcrypt(h)
	}
	_, _, _, err := parseArgon(h)
	return err
}

// isBcrypt reports whether h claims to be a bcrypt hash ("$2a$", "$2b$",
// "$2y$").
func isBcrypt(h string) bool {
	return strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$")
}

// checkBcrypt refuses a bcrypt hash that does not parse or costs more
// than MaxBcryptCost.
func checkBcrypt(h string) error {
	cost, err := bcrypt.Cost([]byte(h))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadPasswordHash, err)
	}
	if cost > MaxBcryptCost {
		return fmt.Errorf("%w: bcrypt cost %d over %d", ErrBadPasswordHash, cost, MaxBcryptCost)
	}
	return nil
}

type argonParams struct {
	time, memory uint32
	threads      uint8
}

// parseArgon parses an argon2id PHC string and refuses parameters out of
// the limits above, or that RFC 9106 section 3.1 does not allow (no
// pass, less than 8 KiB of memory per lane).
func parseArgon(h string) (argonParams, []byte, []byte, error) {
	p, salt, key, err := parseArgonPHC(h)
	if err != nil {
		return p, nil, nil, err
	}
	if err := p.check(); err != nil {
		return p, nil, nil, fmt.Errorf("%w: argon2 parameters m=%d,t=%d,p=%d: %s", ErrBadPasswordHash, p.memory, p.time, p.threads, err)
	}
	if len(salt) < minArgonSalt || len(salt) > maxArgonSalt || len(key) < minArgonKey || len(key) > maxArgonKey {
		return p, nil, nil, fmt.Errorf("%w: argon2 salt of %d or key of %d bytes (want %d-%d and %d-%d)",
			ErrBadPasswordHash, len(salt), len(key), minArgonSalt, maxArgonSalt, minArgonKey, maxArgonKey)
	}
	return p, salt, key, nil
}

// parseArgonPHC parses the syntax of an argon2id PHC string
// ($argon2id$v=19$m=..,t=..,p=..$salt$key), judging no parameter.
func parseArgonPHC(h string) (argonParams, []byte, []byte, error) {
	var p argonParams
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: want argon2id or bcrypt", ErrBadPasswordHash)
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("%w: argon2 version %q", ErrBadPasswordHash, parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return p, nil, nil, fmt.Errorf("%w: argon2 parameters %q", ErrBadPasswordHash, parts[3])
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil {
		return p, nil, nil, fmt.Errorf("%w: argon2 salt or key not base64", ErrBadPasswordHash)
	}
	return p, salt, key, nil
}

// admitStored is the state machine's rule for a hash in a mailbox
// command, unchanged since the first release: a replicated rule must
// judge an entry the same on every node and at every replay, whatever
// release applies it. The limits that keep logins cheap are
// CheckPasswordHash's, which the node applies before it proposes, and
// VerifyPassword's, at login.
func admitStored(h string) error {
	if h == "" {
		return nil
	}
	if isBcrypt(h) {
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return fmt.Errorf("%w: %v", ErrBadPasswordHash, err)
		}
		return nil
	}
	p, _, key, err := parseArgonPHC(h)
	switch {
	case err != nil:
		return err
	case p.memory > 1<<22 || p.time > 16 || p.threads == 0:
		return fmt.Errorf("%w: argon2 parameters m=%d,t=%d,p=%d out of range", ErrBadPasswordHash, p.memory, p.time, p.threads)
	case len(key) == 0:
		return fmt.Errorf("%w: argon2 salt or key", ErrBadPasswordHash)
	}
	return nil
}

// check says which parameter is out of range, if one is. argon2.IDKey
// panics with no pass, and otherwise takes whatever memory and lanes it
// is given.
func (p argonParams) check() error {
	switch {
	case p.time < 1 || p.time > MaxArgonTime:
		return fmt.Errorf("t must be 1 to %d", MaxArgonTime)
	case p.threads < 1 || p.threads > MaxArgonThreads:
		return fmt.Errorf("p must be 1 to %d", MaxArgonThreads)
	case p.memory < 8*uint32(p.threads) || p.memory > MaxArgonMemory:
		return fmt.Errorf("m must be 8*p to %d KiB", MaxArgonMemory)
	}
	return nil
}

// PasswordMemory is the memory, in bytes, that checking a password
// against hash takes: argon2id's m parameter (at most MaxArgonMemory),
// bcrypt's few KiB, 0 for a hash CheckPasswordHash refuses (VerifyPassword
// does not run it).
func PasswordMemory(hash string) int64 {
	if isBcrypt(hash) {
		if checkBcrypt(hash) != nil {
			return 0
		}
		return 4 << 10
	}
	p, _, _, err := parseArgon(hash)
	if err != nil {
		return 0
	}
	return int64(p.memory) << 10
}

// VerifyPassword reports whether pw matches the stored hash. An empty hash
// matches nothing, and so does one CheckPasswordHash refuses: a hash
// stored before a limit was introduced fails the login (which the caller
// then counts and slows like any failure) instead of panicking or running
// for hours.
func VerifyPassword(hash, pw string) bool {
	if hash == "" || len(pw) > MaxPasswordLen {
		return false
	}
	if isBcrypt(hash) {
		return checkBcrypt(hash) == nil && bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
	}
	p, salt, key, err := parseArgon(hash)
	if err != nil {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.time, p.memory, p.threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1
}
