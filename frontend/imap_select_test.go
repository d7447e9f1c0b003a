package frontend

import (
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestIMAPResolve: sequence and UID sets become ascending, unique snapshot
// positions, whatever the order and overlap of their ranges.
func TestIMAPResolve(t *testing.T) {
	sel := &imapSelected{}
	for _, uid := range []uint32{2, 4, 6, 8, 10} {
		sel.msgs = append(sel.msgs, imapMsg{uid: uid})
	}
	sel.searchRes = imap.UIDSetNum(4, 10)
	seq := func(rs ...[2]uint32) imap.SeqSet {
		var s imap.SeqSet
		for _, r := range rs {
			s = append(s, imap.SeqRange{Start: r[0], Stop: r[1]})
		}
		return s
	}
	uid := func(rs ...[2]uint32) imap.UIDSet {
		var s imap.UIDSet
		for _, r := range rs {
			s = append(s, imap.UIDRange{Start: imap.UID(r[0]), Stop: imap.UID(r[1])})
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		set    imap.NumSet
		strict bool
		want   []int
		bad    bool
	}{
		{"one", seq([2]uint32{3, 3}), true, []int{2}, false},
		{"range", seq([2]uint32{2, 4}), true, []int{1, 2, 3}, false},
		{"reversed range", seq([2]uint32{4, 2}), true, []int{1, 2, 3}, false},
		{"star", seq([2]uint32{0, 0}), true, []int{4}, false},
		{"3:*", seq([2]uint32{3, 0}), true, []int{2, 3, 4}, false},
		{"overlapping, out of order", seq([2]uint32{4, 5}, [2]uint32{1, 2}, [2]uint32{2, 4}), true, []int{0, 1, 2, 3, 4}, false},
		{"past the end, strict", seq([2]uint32{6, 6}), true, nil, true},
		{"past the end, lenient", seq([2]uint32{4, 9}), false, []int{3, 4}, false},
		{"uid hit", uid([2]uint32{6, 6}), true, []int{2}, false},
		{"uid miss", uid([2]uint32{5, 5}), true, nil, false},
		{"uid range between", uid([2]uint32{3, 7}), true, []int{1, 2}, false},
		{"uid star", uid([2]uint32{9, 0}), true, []int{4}, false},
		{"uid huge", uid([2]uint32{1, 4294967295}), true, []int{0, 1, 2, 3, 4}, false},
		{"uid overlapping", uid([2]uint32{8, 10}, [2]uint32{2, 8}), true, []int{0, 1, 2, 3, 4}, false},
		{"search result", imap.SearchRes(), true, []int{1, 4}, false},
	} {
		got, err := sel.resolve(tc.set, tc.strict)
		if (err != nil) != tc.bad {
			t.Errorf("%s: error %v, want error %v", tc.name, err, tc.bad)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
