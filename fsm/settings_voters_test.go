package fsm

import (
	"errors"
	"testing"
)

// The voter cap needs encoding 3: a SettingsSet that raises the encoding
// may carry it (written in the encoding it raises to), one that keeps or
// lowers the encoding below 3 may not, and the cap must be odd.
func TestMaxVotersSetting(t *testing.T) {
	a := deliveryFixture(t)
	raise := &SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: EncodingJSON3, MaxVoters: 3}}
	data, err := EncodeAs(raise, EncodingBinary)
	if err != nil || data[1] != EncodingJSON3 {
		t.Fatalf("raising the encoding with a cap: %v, encoding %v", err, data)
	}
	if r := a.applyAs(raise, EncodingBinary); r.Err != nil {
		t.Fatal(r.Err)
	}
	if s, _ := a.s.Settings(); s.MaxVoters != 3 || s.CommandEncoding != EncodingJSON3 {
		t.Fatalf("settings %+v", s)
	}
	lower := &SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: EncodingBinary, MaxVoters: 3}}
	if r := a.applyAs(lower, EncodingJSON3); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("lowering the encoding under a cap: %v", r.Err)
	}
	if _, err := EncodeAs(lower, EncodingBinary); !errors.Is(err, ErrEncoding) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("a cap in encoding 2: %v", err)
	}
	even := &SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: EncodingJSON3, MaxVoters: 4}}
	if r := a.applyAs(even, EncodingJSON3); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("an even cap: %v", r.Err)
	}
}

// A leader refuses an entry in a newer encoding than its setting allows
// (a follower may have encoded it under a setting since lowered), except
// the settings change that raises the encoding itself.
func TestCheckEncoding(t *testing.T) {
	enc := func(c Command, e int) []byte {
		t.Helper()
		data, err := EncodeAs(c, e)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	dsn := &Deliver{Hash: bodyHash("x"), Size: 1, Replicas: []string{"n1"},
		Queue: &QueuePart{Recipients: []string{"x@far.net"}, DSN: &QueueDSN{EnvID: "E"}}}
	plain := &Deliver{Hash: bodyHash("x"), Size: 1, Replicas: []string{"n1"}, Mailboxes: []string{"a@example.com"}}
	raise := &SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: EncodingJSON3, MaxVoters: 5}}
	for _, c := range []struct {
		name    string
		data    []byte
		setting int
		ok      bool
	}{
		{"binary under JSON", enc(plain, EncodingBinary), EncodingJSON, false},
		{"binary under binary", enc(plain, EncodingBinary), EncodingBinary, true},
		{"JSON3 under binary", enc(dsn, EncodingJSON3), EncodingBinary, false},
		{"JSON3 under JSON3", enc(dsn, EncodingJSON3), EncodingJSON3, true},
		{"the change that raises to JSON3", enc(raise, EncodingBinary), EncodingBinary, true},
		{"JSON under no setting", enc(plain, EncodingJSON), 0, true},
	} {
		err := CheckEncoding(c.data, c.setting)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrEncoding)) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
