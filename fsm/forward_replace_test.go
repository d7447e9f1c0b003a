package fsm

import (
	"errors"
	"slices"
	"testing"
)

// ForwardAdd with Replace changes an existing forward in one entry, with
// every check an add makes, and needs EncodingJSON6.
func TestForwardReplace(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "a@example.com"}, {Address: "b@example.com"}, {Address: "c@example.com"}}})
	a.must(&ForwardAdd{Address: "team@example.com", Targets: []string{"a@example.com"}})
	first, err := a.s.Forward("team@example.com")
	if err != nil {
		t.Fatal(err)
	}

	if r := a.applyAs(&ForwardAdd{Address: "team@example.com", Targets: []string{"b@example.com"}}, NewestEncoding); !errors.Is(r.Err, ErrExists) {
		t.Fatalf("add over an existing forward: %v, want ErrExists", r.Err)
	}
	replace := &ForwardAdd{Address: "Team@example.com", Targets: []string{"b@example.com", "c@example.com"}, Replace: true}
	if r := a.applyAs(replace, NewestEncoding); r.Err != nil {
		t.Fatalf("replace: %v", r.Err)
	}
	got, err := a.s.Forward("team@example.com")
	if err != nil || !slices.Equal(got.Targets, []string{"b@example.com", "c@example.com"}) || got.CreatedIndex != first.CreatedIndex {
		t.Fatalf("after replace: %+v, %v; want targets b, c and the first CreatedIndex %d", got, err, first.CreatedIndex)
	}

	// A replacement that would loop is refused and changes nothing.
	a.must(&ForwardAdd{Address: "back@example.com", Targets: []string{"team@example.com"}})
	loop := &ForwardAdd{Address: "team@example.com", Targets: []string{"back@example.com"}, Replace: true}
	if r := a.applyAs(loop, NewestEncoding); !errors.Is(r.Err, ErrForwardLoop) {
		t.Fatalf("looping replace: %v, want ErrForwardLoop", r.Err)
	}
	if got, _ := a.s.Forward("team@example.com"); !slices.Equal(got.Targets, []string{"b@example.com", "c@example.com"}) {
		t.Fatalf("a refused replace changed the forward: %+v", got)
	}

	// Replace on an address without a forward creates one.
	if r := a.applyAs(&ForwardAdd{Address: "new@example.com", Targets: []string{"a@example.com"}, Replace: true}, NewestEncoding); r.Err != nil {
		t.Fatalf("replace creating: %v", r.Err)
	}
	if r, err := a.s.Resolve("new@example.com"); err != nil || !slices.Equal(r.Mailboxes, []string{"a@example.com"}) {
		t.Fatalf("new forward resolves to %+v, %v", r, err)
	}
}

func TestForwardReplaceNeedsEncoding6(t *testing.T) {
	c := &ForwardAdd{Address: "team@example.com", Targets: []string{"a@example.com"}, Replace: true}
	if _, err := EncodeAs(c, EncodingJSON5); !errors.Is(err, ErrEncoding) {
		t.Fatalf("replace at encoding 5: %v, want ErrEncoding", err)
	}
	data, err := EncodeAs(c, EncodingJSON6)
	if err != nil || data[1] != EncodingJSON6 {
		t.Fatalf("replace at encoding 6: %v, encoding %d", err, data[1])
	}
	if err := CheckEncoding(data, EncodingJSON5); !errors.Is(err, ErrEncoding) {
		t.Fatalf("a leader at 5 accepted the entry: %v", err)
	}
	plain, err := EncodeAs(&ForwardAdd{Address: "team@example.com", Targets: []string{"a@example.com"}}, NewestEncoding)
	if err != nil || plain[1] != EncodingJSON {
		t.Fatalf("a plain add is written in %d (%v), want %d", plain[1], err, EncodingJSON)
	}
	raise, err := EncodeAs(&SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: EncodingJSON6}}, EncodingJSON5)
	if err != nil || raise[1] != EncodingJSON6 {
		t.Fatalf("the raise to 6 is written in %d (%v), want 6", raise[1], err)
	}
}
