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

// CheckPasswordHash accepts "" (no password: login disabled), argon2id and
// bcrypt hashes.
func CheckPasswordHash(h string) error {
	if h == "" {
		return nil
	}
	if strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$") {
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return fmt.Errorf("%w: %v", ErrBadPasswordHash, err)
		}
		return nil
	}
	_, _, _, err := parseArgon(h)
	return err
}

type argonParams struct {
	time, memory uint32
	threads      uint8
}

func parseArgon(h string) (argonParams, []byte, []byte, error) {
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
	if p.memory > 1<<22 || p.time > 16 || p.threads == 0 {
		return p, nil, nil, fmt.Errorf("%w: argon2 parameters %q out of range", ErrBadPasswordHash, parts[3])
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) == 0 {
		return p, nil, nil, fmt.Errorf("%w: argon2 salt or key", ErrBadPasswordHash)
	}
	return p, salt, key, nil
}

// PasswordMemory is the memory, in bytes, that checking a password
// against hash takes: argon2id's m parameter (imported hashes may ask for
// up to 4 GiB), bcrypt's few KiB, 0 for a hash in no known format.
func PasswordMemory(hash string) int64 {
	if strings.HasPrefix(hash, "$2") {
		return 4 << 10
	}
	p, _, _, err := parseArgon(hash)
	if err != nil {
		return 0
	}
	return int64(p.memory) << 10
}

// VerifyPassword reports whether pw matches the stored hash. An empty hash
// matches nothing.
func VerifyPassword(hash, pw string) bool {
	if hash == "" || len(pw) > MaxPasswordLen {
		return false
	}
	if strings.HasPrefix(hash, "$2") {
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
	}
	p, salt, key, err := parseArgon(hash)
	if err != nil {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, p.time, p.memory, p.threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1
}
