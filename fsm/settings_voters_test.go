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
	raise := &SettingsSet{Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: EncodingJSON3, MaxVoters: 3}}
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
	lower := &SettingsSet{Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: EncodingBinary, MaxVoters: 3}}
	if r := a.applyAs(lower, EncodingJSON3); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("lowering the encoding under a cap: %v", r.Err)
	}
	if _, err := EncodeAs(lower, EncodingBinary); !errors.Is(err, ErrEncoding) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("a cap in encoding 2: %v", err)
	}
	even := &SettingsSet{Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: EncodingJSON3, MaxVoters: 4}}
	if r := a.applyAs(even, EncodingJSON3); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("an even cap: %v", r.Err)
	}
}
