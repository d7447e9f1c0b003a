package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// TestRestoreRefusesANewerEncoding: a snapshot of a state whose command
// encoding this release cannot read is refused, and the state is left as
// it was. Installed, it would hold records a later release wrote by rules
// this one does not know, which this one would then rewrite by its own
// on the next entry it can decode (one that rewrites a forward or a
// queue entry, dropping the fields it does not know), and the replica
// would diverge while it looked healthy. The snapshot header only stops
// releases before encoding 4.
func TestRestoreRefusesANewerEncoding(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "example.com"})
	plantRecord(t, a.s, keySettings, []byte(fmt.Sprintf(`{"replicas":2,"write_quorum":2,"command_encoding":%d}`, NewestEncoding+1)))
	snap := dump(t, a.s)

	b := newApplier(t)
	b.must(&DomainAdd{Name: "kept.org"})
	before := dump(t, b.s)
	if err := b.s.Restore(bytes.NewReader(snap)); !errors.Is(err, ErrStateEncoding) {
		t.Fatalf("restore of a state at encoding %d: %v, want ErrStateEncoding", NewestEncoding+1, err)
	}
	if after := dump(t, b.s); !bytes.Equal(before, after) {
		t.Fatal("a refused restore changed the state")
	}
	b.must(&DomainAdd{Name: "still-applies.org"})
}

// TestOpenRefusesANewerEncoding: a state directory a later release left
// at an encoding this one does not read (a node rolled back) is refused
// at Open for the reason a snapshot of it is.
func TestOpenRefusesANewerEncoding(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	plantRecord(t, s, keySettings, []byte(fmt.Sprintf(`{"replicas":2,"write_quorum":2,"command_encoding":%d}`, NewestEncoding+1)))
	s.Close()
	if s, err := Open(dir, Options{}); !errors.Is(err, ErrStateEncoding) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("open of a state at encoding %d: %v, want ErrStateEncoding", NewestEncoding+1, err)
	}
}
