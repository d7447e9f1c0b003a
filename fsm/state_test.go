package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// applier drives a State the way raft would, one entry per command.
type applier struct {
	t     testing.TB
	s     *State
	index uint64
}

// newApplier opens a state whose tests fail if a refused command leaves
// writes in the batch (State.applyCommand).
func newApplier(t testing.TB) *applier {
	t.Helper()
	s, err := Open(t.TempDir(), Options{refusedWrote: func(index uint64, typ CmdType) {
		t.Errorf("entry %d: a refused command of type %d left writes", index, typ)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &applier{t: t, s: s}
}

func (a *applier) apply(c Command) Result {
	a.t.Helper()
	return a.applyAs(c, EncodingJSON)
}

// applyAs applies c encoded in the newest encoding up to enc.
func (a *applier) applyAs(c Command, enc int) Result {
	a.t.Helper()
	data, err := EncodeAs(c, enc)
	if err != nil {
		a.t.Fatal(err)
	}
	a.index++
	return a.s.ApplyBatch([]Entry{{Index: a.index, Data: data}})[0]
}

func (a *applier) must(c Command) {
	a.t.Helper()
	if r := a.apply(c); r.Err != nil {
		a.t.Fatalf("%T: %v", c, r.Err)
	}
}

func TestDirectoryCommands(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "Example.COM"})
	a.must(&DomainAdd{Name: "other.org"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "John.Doe@example.com", QuotaBytes: 1 << 20}}})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "jane@example.com"}}})

	cases := []struct {
		name string
		cmd  Command
		want error
	}{
		{"duplicate domain", &DomainAdd{Name: "example.com."}, ErrExists},
		{"bad domain", &DomainAdd{Name: "exa_mple.com"}, ErrInvalid},
		{"hyphen label", &DomainAdd{Name: "-a.com"}, ErrInvalid},
		{"unicode domain", &DomainAdd{Name: "bücher.de"}, ErrInvalid},
		{"mailbox in unknown domain", &MailboxAdd{Mailboxes: []NewMailbox{{Address: "a@nowhere.net"}}}, ErrNotFound},
		{"duplicate mailbox folded case", &MailboxAdd{Mailboxes: []NewMailbox{{Address: "JOHN.DOE@EXAMPLE.COM"}}}, ErrExists},
		{"bad local part", &MailboxAdd{Mailboxes: []NewMailbox{{Address: "a..b@example.com"}}}, ErrInvalid},
		{"no at", &MailboxAdd{Mailboxes: []NewMailbox{{Address: "example.com"}}}, ErrInvalid},
		{"bad hash", &MailboxAdd{Mailboxes: []NewMailbox{{Address: "x@example.com", PasswordHash: "plain"}}}, ErrInvalid},
		{"negative quota", &MailboxAdd{Mailboxes: []NewMailbox{{Address: "x@example.com", QuotaBytes: -1}}}, ErrInvalid},
		{"batch duplicate", &MailboxAdd{Mailboxes: []NewMailbox{{Address: "y@example.com"}, {Address: "Y@example.com"}}}, ErrExists},
		{"empty batch", &MailboxAdd{}, ErrInvalid},
		{"remove missing mailbox", &MailboxRemove{Address: "nobody@example.com"}, ErrNotFound},
		{"domain not empty", &DomainRemove{Name: "example.com"}, ErrNotEmpty},
		{"remove unknown domain", &DomainRemove{Name: "gone.com"}, ErrNotFound},
		{"forward to itself", &ForwardAdd{Address: "f@example.com", Targets: []string{"F@example.com"}}, ErrForwardLoop},
		{"forward to unknown local", &ForwardAdd{Address: "f@example.com", Targets: []string{"ghost@other.org"}}, ErrNotFound},
		{"forward keep copy without mailbox", &ForwardAdd{Address: "f@example.com", Targets: []string{"jane@example.com"}, KeepCopy: true}, ErrNotFound},
		{"forward no targets", &ForwardAdd{Address: "f@example.com"}, ErrInvalid},
		{"update missing", &MailboxUpdate{Address: "nobody@example.com"}, ErrNotFound},
		{"settings W > R", &SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 3}}, ErrInvalid},
		{"settings unknown command encoding", &SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: NewestEncoding + 1}}, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := dump(t, a.s)
			r := a.apply(tc.cmd)
			if !errors.Is(r.Err, tc.want) {
				t.Fatalf("got %v, want %v", r.Err, tc.want)
			}
			if after := dump(t, a.s); !bytes.Equal(stripApplied(before), stripApplied(after)) {
				t.Fatalf("failed command changed state")
			}
		})
	}

	mb, err := a.s.Mailbox("john.doe@EXAMPLE.com")
	if err != nil || mb.Address != "John.Doe@example.com" || mb.QuotaBytes != 1<<20 {
		t.Fatalf("mailbox: %+v %v", mb, err)
	}
	folders, err := a.s.Folders("john.doe@example.com")
	if err != nil || len(folders) != 5 {
		t.Fatalf("folders: %+v %v", folders, err)
	}
	for _, f := range folders {
		if f.UIDNext != 1 || f.UIDValidity == 0 || (f.Name != "INBOX" && f.SpecialUse == "") {
			t.Fatalf("folder %+v", f)
		}
	}
}

func TestForwardLoopsAndResolve(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "a@example.com"}, {Address: "b@example.com"}}})
	a.must(&ForwardAdd{Address: "sales@example.com", Targets: []string{"a@example.com", "b@example.com", "partner@elsewhere.net"}})
	a.must(&ForwardAdd{Address: "team@example.com", Targets: []string{"sales@example.com"}})
	if r := a.apply(&ForwardAdd{Address: "a@example.com", Targets: []string{"team@example.com"}}); !errors.Is(r.Err, ErrForwardLoop) {
		t.Fatalf("indirect loop: %v", r.Err)
	}
	a.must(&ForwardAdd{Address: "b@example.com", Targets: []string{"x@elsewhere.net"}, KeepCopy: true})
	a.must(&ForwardAdd{Address: "@example.com", Targets: []string{"a@example.com"}})

	checks := map[string]Resolution{
		"team@example.com":    {Mailboxes: []string{"a@example.com", "b@example.com"}, External: []string{"x@elsewhere.net", "partner@elsewhere.net"}},
		"A+news@Example.com":  {Mailboxes: []string{"a@example.com"}, Own: "a@example.com"},
		"unknown@example.com": {Mailboxes: []string{"a@example.com"}},
	}
	for addr, want := range checks {
		got, err := a.s.Resolve(addr)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Resolve(%s) = %v, %v; want %v", addr, got, err, want)
		}
	}
	if _, err := a.s.Resolve("x@not-hosted.org"); !errors.Is(err, ErrNotLocal) {
		t.Fatalf("not local: %v", err)
	}
	// A forward shadows a mailbox created after it, until it is removed.
	a.must(&ForwardAdd{Address: "c@example.com", Targets: []string{"a@example.com"}})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "c@example.com"}}})
	if got, err := a.s.Resolve("c@example.com"); err != nil || fmt.Sprint(got.Mailboxes) != "[a@example.com]" {
		t.Fatalf("shadowed mailbox: %v %v", got, err)
	}
	a.must(&ForwardRemove{Address: "c@example.com"})
	if got, err := a.s.Resolve("c@example.com"); err != nil || fmt.Sprint(got.Mailboxes) != "[c@example.com]" {
		t.Fatalf("unshadowed mailbox: %v %v", got, err)
	}
	a.must(&ForwardRemove{Address: "@example.com"})
	if _, err := a.s.Resolve("unknown@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown after catch-all removal: %v", err)
	}
	if r := a.apply(&MailboxRemove{Address: "b@example.com"}); !errors.Is(r.Err, ErrNotEmpty) {
		t.Fatalf("remove mailbox with keep-copy forward: %v", r.Err)
	}
}

// TestForwardSkipsRemovedTargets: removing a mailbox that forwards point
// at leaves those forwards delivering to their other targets; only a
// forward with no target left is unknown. New forwards still refuse a
// target that does not exist.
func TestForwardSkipsRemovedTargets(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "a@example.com"}, {Address: "b@example.com"}, {Address: "c@example.com"}}})
	a.must(&ForwardAdd{Address: "team@example.com", Targets: []string{"a@example.com", "b@example.com", "partner@elsewhere.net"}})
	a.must(&ForwardAdd{Address: "inner@example.com", Targets: []string{"c@example.com"}})
	a.must(&ForwardAdd{Address: "outer@example.com", Targets: []string{"inner@example.com", "b@example.com"}})
	a.must(&ForwardAdd{Address: "solo@example.com", Targets: []string{"a@example.com"}})

	a.must(&MailboxRemove{Address: "c@example.com"})
	a.must(&MailboxRemove{Address: "a@example.com"})
	checks := map[string]Resolution{
		"team@example.com":  {Mailboxes: []string{"b@example.com"}, External: []string{"partner@elsewhere.net"}},
		"outer@example.com": {Mailboxes: []string{"b@example.com"}},
	}
	for addr, want := range checks {
		got, err := a.s.Resolve(addr)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Resolve(%s) = %v, %v; want %v", addr, got, err, want)
		}
	}
	for _, addr := range []string{"inner@example.com", "solo@example.com"} {
		if got, err := a.s.Resolve(addr); !errors.Is(err, ErrNotFound) {
			t.Errorf("Resolve(%s) with every target removed = %v, %v; want ErrNotFound", addr, got, err)
		}
	}
	if r := a.apply(&ForwardAdd{Address: "new@example.com", Targets: []string{"b@example.com", "a@example.com"}}); !errors.Is(r.Err, ErrNotFound) {
		t.Errorf("a new forward to a removed mailbox: %v", r.Err)
	}
	// The employee who left gets a forward back to the team that still
	// lists them: a loop, refused although the team skips the address.
	if r := a.apply(&ForwardAdd{Address: "a@example.com", Targets: []string{"team@example.com"}}); !errors.Is(r.Err, ErrForwardLoop) {
		t.Errorf("a forward from a removed member back to its list: %v", r.Err)
	}
	if got, err := a.s.Resolve("team@example.com"); err != nil || len(got.Mailboxes) != 1 {
		t.Errorf("team after the refused loop: %v, %v", got, err)
	}
}

// plantRecord writes raw under key behind the applier's back, as damage
// on disk would.
func plantRecord(t *testing.T, s *State, key, raw []byte) {
	t.Helper()
	if err := s.view(func(r pebble.Reader) error {
		return r.(*pebble.DB).Set(key, raw, pebble.NoSync)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestForwardTargetStorageFailureStopsApply: a target whose record cannot
// be read is a fault of this replica, not a business answer. It was
// re-wrapped as ErrNotFound, so this replica refused a forward that the
// others added; now apply stops, as for any storage failure.
func TestForwardTargetStorageFailureStopsApply(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "broken@example.com"}}})
	plantRecord(t, a.s, mailboxKey(mustAddr(t, "broken@example.com")), []byte{0xff})
	if r := a.apply(&ForwardAdd{Address: "f@example.com", Targets: []string{"nobody@example.com"}}); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("an unknown target: %v, want ErrNotFound", r.Err)
	}
	defer func() {
		p := recover()
		if p == nil || !strings.Contains(fmt.Sprint(p), "storage failure") {
			t.Fatalf("an unreadable target record: panic %v, want a storage failure", p)
		}
	}()
	r := a.apply(&ForwardAdd{Address: "f@example.com", Targets: []string{"broken@example.com"}})
	t.Fatalf("an unreadable target record gave a result: %+v", r)
}

func TestApplyIsIdempotentByIndex(t *testing.T) {
	a := newApplier(t)
	data, _ := Encode(&DomainAdd{Name: "example.com"})
	first := a.s.ApplyBatch([]Entry{{Index: 5, Data: data}})
	again := a.s.ApplyBatch([]Entry{{Index: 5, Data: data}, {Index: 4, Data: data}})
	if first[0].Err != nil || again[0].Err != nil || again[1].Err != nil {
		t.Fatalf("replay must be a silent no-op: %v %v", first, again)
	}
	if got := a.s.Applied(); got != 5 {
		t.Fatalf("applied %d", got)
	}
	if r := a.s.ApplyBatch([]Entry{{Index: 6, Data: data}}); !errors.Is(r[0].Err, ErrExists) {
		t.Fatalf("new index must apply: %v", r[0].Err)
	}
}

func TestUndecodableEntryPanics(t *testing.T) {
	for _, data := range [][]byte{{0xEE, 1, '{', '}'}, {byte(CmdDomainAdd), 99, '{', '}'}, {byte(CmdDomainAdd), 1, 'x'}, {7}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("entry %q did not panic", data)
				}
			}()
			a := newApplier(t)
			a.s.ApplyBatch([]Entry{{Index: 1, Data: data}})
		}()
	}
}

func TestDuplicateRegistrationPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	r := newRegistry()
	r.register(CmdDomainAdd, func() Command { return &DomainAdd{} })
}

func TestSnapshotRestoreAndReopen(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "example.com"})
	var batch []NewMailbox
	for i := 0; i < 500; i++ {
		batch = append(batch, NewMailbox{Address: fmt.Sprintf("user%d@example.com", i)})
	}
	a.must(&MailboxAdd{Mailboxes: batch})
	snap, err := a.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	a.must(&DomainAdd{Name: "after-snapshot.com"})
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dir := t.TempDir()
	b, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if b.Applied() != 2 {
		t.Fatalf("restored applied index %d, want 2", b.Applied())
	}
	if _, err := b.Mailbox("user499@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Domain("after-snapshot.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("snapshot leaked a later write: %v", err)
	}
	b.Close()
	// Reopen: the restored state is what CURRENT names.
	c, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Applied() != 2 {
		t.Fatalf("reopened applied %d", c.Applied())
	}
	got, _ := c.Mailboxes("example.com", "user10", 2)
	if len(got) != 2 || got[0].Address != "user100@example.com" {
		t.Fatalf("paged list after reopen: %+v", got)
	}

	corrupt := append([]byte(nil), buf.Bytes()...)
	corrupt[len(corrupt)/2] ^= 0xff
	if err := c.Restore(bytes.NewReader(corrupt)); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("corrupt snapshot: %v", err)
	}
	if _, err := c.Mailbox("user1@example.com"); err != nil {
		t.Fatalf("failed restore damaged state: %v", err)
	}
}

func TestPasswords(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPasswordHash(h); err != nil {
		t.Fatal(err)
	}
	if !VerifyPassword(h, "correct horse") || VerifyPassword(h, "wrong") || VerifyPassword("", "") {
		t.Fatal("verify")
	}
	for _, bad := range []string{"plain", "$argon2id$v=19$m=x$a$b", "$2a$xx"} {
		if CheckPasswordHash(bad) == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	for hash, want := range map[string]int64{
		h: 19 << 20,
		"$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$a2V5a2V5":          64 << 20, // imported, 64 MiB
		"$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$a2V5":            0,        // 4 GiB: refused, never run
		"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy": 4 << 10,
		"$2a$31$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy": 0, // cost 31: refused
		"plain": 0,
	} {
		if got := PasswordMemory(hash); got != want {
			t.Errorf("PasswordMemory(%q) = %d, want %d", hash, got, want)
		}
	}
}

func dump(t *testing.T, s *State) []byte {
	t.Helper()
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// stripApplied removes the applied-index record, which every entry bumps.
func stripApplied(b []byte) []byte {
	b = b[:len(b)-4] // the trailing checksum covers the applied index too
	i := bytes.Index(b, keyApplied)
	if i < 0 {
		return b
	}
	return append(append([]byte(nil), b[:i]...), b[i+len(keyApplied)+9:]...)
}

// A restored snapshot may change any mailbox, and keeps no list of which:
// OnRestore tells the watchers to look again.
func TestRestoreCallsOnRestore(t *testing.T) {
	a := deliveryFixture(t)
	a.must(&Deliver{ID: "d1", Hash: bodyHash("x"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
	snap := dump(t, a.s)
	var restored atomic.Int32
	b, err := Open(t.TempDir(), Options{OnRestore: func() { restored.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := b.Messages("a@example.com", "INBOX", 0, 0); len(msgs) != 1 || restored.Load() != 1 {
		t.Fatalf("after restore: %d messages, OnRestore called %d times; want 1 and 1", len(msgs), restored.Load())
	}
}
