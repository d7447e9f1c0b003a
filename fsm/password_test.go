package fsm

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// argonPHC builds an argon2id PHC string. With real set the key is
// argon2id of pw under these parameters (so the parameters must be ones
// argon2.IDKey accepts); otherwise it is keyLen zero bytes.
func argonPHC(pw string, m, tm uint32, p uint8, saltLen, keyLen int, real bool) string {
	salt := []byte(strings.Repeat("s", saltLen))
	key := make([]byte, keyLen)
	if real {
		key = argon2.IDKey([]byte(pw), salt, tm, m, p, uint32(keyLen))
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, tm, p, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// bcryptWithCost is a well-formed bcrypt hash claiming cost. Only the
// admission rule reads it; it is never compared against.
func bcryptWithCost(cost int) string {
	return fmt.Sprintf("$2b$%02d$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", cost)
}

// A hash whose check would panic (t=0), take days (bcrypt cost 31) or
// more memory than a node sets aside for all password checks together is
// refused when it is admitted, as a mailbox's or a password change's
// (MailboxAdd, MailboxUpdate).
func TestCheckPasswordHashLimits(t *testing.T) {
	ours, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{
		ours,
		argonPHC("", 64<<10, 3, 4, 16, 32, false), // RFC 9106 section 4, second option
		argonPHC("", 64<<10, 4, 1, 16, 32, false), // PHP's default
		argonPHC("", 8, 1, 1, 8, 4, false),        // every minimum
		argonPHC("", 128, MaxArgonTime, MaxArgonThreads, 64, 64, false),
		bcryptWithCost(4), bcryptWithCost(12), bcryptWithCost(MaxBcryptCost),
	} {
		if err := CheckPasswordHash(h); err != nil {
			t.Errorf("refused %q: %v", h, err)
		}
	}
	for name, h := range map[string]string{
		"no pass (argon2.IDKey panics)": argonPHC("", 19<<10, 0, 1, 16, 32, false),
		"too many passes":               argonPHC("", 19<<10, MaxArgonTime+1, 1, 16, 32, false),
		"no lane":                       argonPHC("", 19<<10, 2, 0, 16, 32, false),
		"too many lanes":                argonPHC("", 19<<10, 2, MaxArgonThreads+1, 16, 32, false),
		"memory over the cap":           argonPHC("", MaxArgonMemory+1, 1, 1, 16, 32, false),
		"2 GiB (RFC 9106 first option)": argonPHC("", 2<<20, 1, 4, 16, 32, false),
		"4 GiB":                         argonPHC("", 4<<20, 1, 1, 16, 32, false),
		"under 8 KiB per lane":          argonPHC("", 15, 1, 2, 16, 32, false),
		"short salt":                    argonPHC("", 19<<10, 2, 1, minArgonSalt-1, 32, false),
		"long salt":                     argonPHC("", 19<<10, 2, 1, maxArgonSalt+1, 32, false),
		"short key":                     argonPHC("", 19<<10, 2, 1, 16, minArgonKey-1, false),
		"long key":                      argonPHC("", 19<<10, 2, 1, 16, maxArgonKey+1, false),
		"lanes overflow a byte":         "$argon2id$v=19$m=19456,t=2,p=257$c2FsdHNhbHQ$a2V5a2V5",
		"bcrypt cost over the cap":      bcryptWithCost(MaxBcryptCost + 1),
		"bcrypt cost 31":                bcryptWithCost(31),
	} {
		if err := CheckPasswordHash(h); !errors.Is(err, ErrBadPasswordHash) {
			t.Errorf("%s: CheckPasswordHash(%q) = %v, want ErrBadPasswordHash", name, h, err)
		}
	}
}

// The state machine keeps its first release's rule for hashes, so that
// every node, old or new, and every replay judges an entry alike: a hash
// over CheckPasswordHash's limits is admitted by the commands (the node
// refuses it before proposing), while one the old rule refused still is.
func TestMailboxCommandsKeepTheStoredHashRule(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "ok@example.com"}}})
	jam := argonPHC("", 19<<10, 0, 1, 16, 32, false)
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "jam@example.com", PasswordHash: jam}}})
	slow := bcryptWithCost(31)
	a.must(&MailboxUpdate{Address: "ok@example.com", PasswordHash: &slow})
	huge := argonPHC("", 1<<22+1, 1, 1, 16, 32, false)
	if r := a.apply(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "huge@example.com", PasswordHash: huge}}}); !errors.Is(r.Err, ErrInvalid) {
		t.Errorf("MailboxAdd over 4 GiB: %v, want ErrInvalid", r.Err)
	}
	for _, h := range []string{jam, slow} {
		if err := CheckPasswordHash(h); !errors.Is(err, ErrBadPasswordHash) {
			t.Errorf("CheckPasswordHash(%q) = %v", h, err)
		}
	}
}

// verifyGuarded runs VerifyPassword, turning a panic or a check that
// runs past a few seconds into a test failure instead of a crash or a
// hang.
func verifyGuarded(t *testing.T, what, hash, pw string) bool {
	t.Helper()
	type result struct {
		ok    bool
		panic any
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- result{panic: v}
			}
		}()
		done <- result{ok: VerifyPassword(hash, pw)}
	}()
	select {
	case r := <-done:
		if r.panic != nil {
			t.Errorf("%s: VerifyPassword panicked: %v", what, r.panic)
		}
		return r.ok
	case <-time.After(5 * time.Second):
		t.Errorf("%s: VerifyPassword still running after 5 s", what)
		return false
	}
}

// A hash stored before the limits existed is not run at login: the check
// fails at once, whatever the password, so the login is an ordinary
// failure (counted and slowed by the caller) rather than a panic, hours
// of CPU, or gigabytes of memory. Hashes the limits admit still verify.
func TestVerifyPasswordRefusesHashesOverTheLimits(t *testing.T) {
	const pw = "correct horse"
	// Hashes of pw itself, so that only the limits can make them fail.
	for name, h := range map[string]string{
		"memory over the cap": argonPHC(pw, MaxArgonMemory+8, 1, 1, 16, 32, true),
		"too many lanes":      argonPHC(pw, 8*(MaxArgonThreads+1), 1, MaxArgonThreads+1, 16, 32, true),
		"short salt":          argonPHC(pw, 64, 1, 1, minArgonSalt-1, 32, true),
	} {
		if verifyGuarded(t, name, h, pw) {
			t.Errorf("%s: the right password matched a hash over the limits", name)
		}
	}
	for name, h := range map[string]string{
		"no pass":        argonPHC(pw, 19<<10, 0, 1, 16, 32, false),
		"bcrypt cost 31": bcryptWithCost(31),
	} {
		start := time.Now()
		if verifyGuarded(t, name, h, pw) {
			t.Errorf("%s: matched", name)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: refusing took %v", name, d)
		}
	}
	within := argonPHC(pw, 64, 1, 1, 16, 32, true)
	if !verifyGuarded(t, "within the limits", within, pw) || verifyGuarded(t, "within the limits, wrong password", within, "x") {
		t.Error("a hash within the limits does not verify")
	}
}

// The same through the state: a mailbox whose stored hash is over the
// limits (admitted by the state machine's older rule) fails its password
// check and keeps working otherwise.
func TestStoredHashOverTheLimitsFailsLogin(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "example.com"})
	stored := argonPHC("pw", 19<<10, 0, 1, 16, 32, false)
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "old@example.com", PasswordHash: stored}}})
	done := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Errorf("panicked: %v", v)
			}
		}()
		mb, ok, err := a.s.CheckPassword("old@example.com", "pw")
		switch {
		case err != nil:
			done <- err
		case ok || mb.Address == "":
			done <- fmt.Errorf("CheckPassword = %+v, %v", mb, ok)
		default:
			done <- nil
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Error("CheckPassword still running after 5 s")
	}
}

// TestMailboxUpdateRefusedWritesNothing: an update with a valid password
// and a refused quota is refused whole. The password used to be written
// before the quota was checked, so the refusal left it stored.
func TestMailboxUpdateRefusedWritesNothing(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "example.com"})
	oldHash, _ := HashPassword("old secret")
	newHash, _ := HashPassword("new secret")
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "a@example.com", PasswordHash: oldHash, QuotaBytes: 100}}})
	quota := int64(-1)
	if r := a.apply(&MailboxUpdate{Address: "a@example.com", PasswordHash: &newHash, QuotaBytes: &quota}); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("negative quota: %v, want ErrInvalid", r.Err)
	}
	if _, ok, _ := a.s.CheckPassword("a@example.com", "new secret"); ok {
		t.Fatal("the refused update's password was stored")
	}
	if mb, ok, _ := a.s.CheckPassword("a@example.com", "old secret"); !ok || mb.QuotaBytes != 100 {
		t.Fatalf("after a refused update: password kept %v, quota %d", ok, mb.QuotaBytes)
	}
}
