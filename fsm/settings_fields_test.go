package fsm

import (
	"errors"
	"testing"
)

// Two settings changes decided on one read (through two nodes, within
// one commit's time) each name the field they change (Fields, encoding
// 11), and apply lays each over the settings as they are then: both
// survive. Without Fields a command is the whole settings, as before,
// and the later one undoes the earlier's change.
func TestSettingsFieldsMergeAtApply(t *testing.T) {
	a := deliveryFixture(t)
	a.raiseTo(gatedEncoding)
	base, err := a.s.Settings()
	if err != nil {
		t.Fatal(err)
	}
	one, two := base, base
	one.WriteQuorum = 1
	two.MaxVoters = 3
	c1 := &SettingsSet{Settings: one, Fields: []string{"write_quorum"}}
	c2 := &SettingsSet{Settings: two, Fields: []string{"max_voters"}}
	if _, err := EncodeAs(c1, EncodingJSON9); !errors.Is(err, ErrEncoding) {
		t.Fatalf("Fields in encoding 9: %v, want ErrEncoding", err)
	}
	if data, err := EncodeAs(c1, gatedEncoding); err != nil || CheckEncoding(data, EncodingJSON9) == nil {
		t.Fatalf("Fields checked against a cluster at 9: %v, want ErrEncoding", err)
	}
	for _, c := range []*SettingsSet{c1, c2} {
		r := a.applyAs(c, gatedEncoding)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if got, _ := a.s.Settings(); r.Value != got {
			t.Fatalf("result of %v: %+v, want the settings it left, %+v", c.Fields, r.Value, got)
		}
	}
	want := base
	want.WriteQuorum, want.MaxVoters = 1, 3
	if got, _ := a.s.Settings(); got != want {
		t.Fatalf("after two changes from one read: %+v, want %+v", got, want)
	}

	// Checked as a whole after the merge: W above the current R.
	bad := base
	bad.Replicas, bad.WriteQuorum = 3, 3
	if r := a.applyAs(&SettingsSet{Settings: bad, Fields: []string{"write_quorum"}}, gatedEncoding); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("W 3 over R 2: %v, want ErrInvalid", r.Err)
	}
	if r := a.applyAs(&SettingsSet{Settings: base, Fields: []string{"colour"}}, gatedEncoding); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("an unknown field: %v, want ErrInvalid", r.Err)
	}

	// The whole settings, as before: the second undoes the first.
	a.must(&SettingsSet{Settings: one})
	a.must(&SettingsSet{Settings: two})
	if got, _ := a.s.Settings(); got != two {
		t.Fatalf("whole settings: %+v, want the last one %+v", got, two)
	}
}
