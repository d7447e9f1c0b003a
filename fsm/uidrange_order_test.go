package fsm

import (
	"slices"
	"testing"
)

// TestRangesAboveTwoToThe31: UID ranges are put in order alike on every
// platform. The order took the difference of two UIDs as an int, which
// wraps on a 32-bit build for UIDs 2^31 apart: there a STORE of
// "3000000000,1:2" sorted its ranges wrong, joined 1:2 into the range
// 3000000000 and changed nothing, while a 64-bit node flagged both
// messages. (GOARCH=386 go test ./fsm -run TestRangesAboveTwoToThe31
// shows the first rule fail.)
func TestRangesAboveTwoToThe31(t *testing.T) {
	big := UIDRange{3000000000, 3000000000}
	for _, c := range []struct{ in, want []UIDRange }{
		{[]UIDRange{big, {1, 2}}, []UIDRange{{1, 2}, big}},
		{[]UIDRange{{1, 2}, big}, []UIDRange{{1, 2}, big}},
		{[]UIDRange{{5, 20}, big, {1, 10}}, []UIDRange{{1, 20}, big}},
	} {
		if got := mergeRanges(c.in); !slices.Equal(got, c.want) {
			t.Errorf("mergeRanges(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	a := deliveryFixture(t)
	for _, b := range []string{"one", "two"} {
		a.must(&Deliver{Hash: bodyHash(b), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
	}
	r := a.apply(&FlagsStore{Mailbox: "a@example.com", Folder: "INBOX", UIDs: []UIDRange{big, {1, 2}}, Op: FlagsAdd, Flags: []string{`\Seen`}})
	if r.Err != nil || len(r.Value.([]Message)) != 2 {
		t.Fatalf("STORE 3000000000,1:2 +FLAGS \\Seen: %+v, want both messages changed", r)
	}
}
