package fsm

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func memberIDs(t *testing.T, s *State) []string {
	t.Helper()
	ms, err := s.Members()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return ids
}

// The cached settings and members follow every command that changes them,
// a snapshot restore, and writes earlier in the same batch.
func TestHotRecordsFollowWrites(t *testing.T) {
	a := deliveryFixture(t)
	if got := memberIDs(t, a.s); !slices.Equal(got, []string{"n1", "n2", "n3"}) {
		t.Fatalf("members %v", got)
	}
	a.must(&MemberRemove{ID: "n2"})
	if got := memberIDs(t, a.s); !slices.Equal(got, []string{"n1", "n3"}) {
		t.Fatalf("after remove: %v", got)
	}
	h := bodyHash("hot")
	if r := a.apply(&Deliver{Hash: h, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}}); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("a removed member was accepted as a replica: %+v", r)
	}
	a.must(&SettingsSet{Settings: Settings{Replicas: 3, WriteQuorum: 3}})
	if s, _ := a.s.Settings(); s.Replicas != 3 || s.WriteQuorum != 3 {
		t.Fatalf("settings after set: %+v", s)
	}
	if r := a.apply(&Deliver{Hash: h, Replicas: []string{"n1", "n3"}, Mailboxes: []string{"a@example.com"}}); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("two replicas accepted under W=3: %+v", r)
	}

	// One batch: add a member, then deliver naming it; then remove it and
	// deliver naming it again. The cache still holds the old list.
	var entries []Entry
	for _, c := range []Command{
		&SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2}},
		&MemberSet{Member{ID: "n4", ClusterAddr: "n4:7000"}},
		&Deliver{Hash: h, Replicas: []string{"n1", "n4"}, Mailboxes: []string{"a@example.com"}},
		&MemberRemove{ID: "n4"},
		&Deliver{Hash: bodyHash("other"), Replicas: []string{"n1", "n4"}, Mailboxes: []string{"a@example.com"}},
	} {
		data, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		a.index++
		entries = append(entries, Entry{Index: a.index, Data: data})
	}
	res := a.s.ApplyBatch(entries)
	if res[2].Err != nil {
		t.Fatalf("delivery to a member added earlier in the batch: %v", res[2].Err)
	}
	if !errors.Is(res[4].Err, ErrInvalid) {
		t.Fatalf("delivery to a member removed earlier in the batch: %+v", res[4])
	}

	snap := dump(t, a.s)
	a.must(&MemberSet{Member{ID: "n5", ClusterAddr: "n5:7000"}})
	if got := memberIDs(t, a.s); !slices.Contains(got, "n5") {
		t.Fatalf("after set: %v", got)
	}
	if err := a.s.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	if got := memberIDs(t, a.s); !slices.Equal(got, []string{"n1", "n3"}) {
		t.Fatalf("after restore: %v", got)
	}
}

// Members hands out copies: a caller that reorders its list cannot
// change what the next caller sees.
func TestMembersIsACopy(t *testing.T) {
	a := deliveryFixture(t)
	ms, _ := a.s.Members()
	ms[0], ms[2] = ms[2], ms[0]
	if got := memberIDs(t, a.s); !slices.Equal(got, []string{"n1", "n2", "n3"}) {
		t.Fatalf("members %v", got)
	}
}
