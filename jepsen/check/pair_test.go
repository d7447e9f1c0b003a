package check

import (
	"errors"
	"testing"
)

func TestPairInterleaved(t *testing.T) {
	b := &hb{}
	b.inv(0, FRead, "a").inv(1, FDeliver, "a", msg("x")).inv(2, FDirAdd, "k")
	b.ok(1, FDeliver, "a").info(0, FRead, "a")
	calls, err := Pair(b.h)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 3 {
		t.Fatalf("got %d calls", len(calls))
	}
	if calls[0].Type() != Info || calls[0].End() != 50 || calls[0].Invoke.Process != 0 {
		t.Errorf("call 0: %+v", calls[0])
	}
	if calls[1].Type() != OK || calls[1].Start() != 20 || calls[1].End() != 40 {
		t.Errorf("call 1: %+v", calls[1])
	}
	if !calls[2].Pending || calls[2].Type() != Info || calls[2].End() != 50 {
		t.Errorf("call 2 should be a pending Info at the end of the history: %+v", calls[2])
	}
}

func TestPairRejectsMalformed(t *testing.T) {
	cases := map[string]History{
		"double invoke":  (&hb{}).inv(0, FRead, "a").inv(0, FRead, "a").h,
		"orphan":         (&hb{}).ok(0, FRead, "a").h,
		"f mismatch":     (&hb{}).inv(0, FRead, "a").ok(0, FDeliver, "a").h,
		"bad type":       (&hb{}).inv(0, FRead, "a").op(0, "done", FRead, "a").h,
		"time backwards": {{Type: Invoke, F: FRead, Time: 5}, {Type: OK, F: FRead, Time: 4}},
	}
	for name, h := range cases {
		if _, err := Pair(h); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
		if r := CheckSetFull(h, Options{}); r.Valid || r.Counts["malformed"] != 1 {
			t.Errorf("%s: checker accepted a malformed history: %+v", name, r)
		}
	}
}
