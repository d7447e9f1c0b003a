package node

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"powermail/fsm"
)

// A dovecot-uidlist is read line by line within bounds: a line over
// the limit is left out and the lines after it are still read; CRLF
// line ends are taken as LF; a header without a UIDVALIDITY is no list
// (the ids made of it would be wrong); what an entry keeps is bounded
// whatever its line holds, and so is the number of entries.
func TestParseUIDListHostile(t *testing.T) {
	long := "7 P" + strings.Repeat("x", maxUIDListLine+10) + " :1700000007.M7P1.old:2,S\n"
	l, err := parseUIDList(strings.NewReader("3 V1234567890 N43\n5 :1700000005.M5P1.old:2,S\n" + long + "6 :1700000006.M6P1.old\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.byBase["1700000006.M6P1.old"]; !ok || len(l.byBase) != 2 {
		t.Errorf("after an over-long line: %d entries, %v", len(l.byBase), slices.Collect(maps.Keys(l.byBase)))
	}

	l, err = parseUIDList(strings.NewReader("3 V1234567890 N43\r\n5 W20 :1700000005.M5P1.old\r\n6 P1.ab :1700000006.M6P1.old:2,S\r\n"))
	if err != nil || l.validity != 1234567890 {
		t.Fatalf("CRLF header: %+v, %v", l, err)
	}
	if e, ok := l.byBase["1700000005.M5P1.old"]; !ok || e.uid != 5 {
		t.Errorf("CRLF line without flags: %+v, %v", e, ok)
	}
	if e := l.byBase["1700000006.M6P1.old"]; e.pop3 != "1.ab" {
		t.Errorf("CRLF P field: %q", e.pop3)
	}

	for _, head := range []string{"3 N43 G00\n", "3 Vx N43\n", "1 0 43\n", "1\n"} {
		if _, err := parseUIDList(strings.NewReader(head + "5 :a\n")); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("header %q: %v, want ErrInvalidArgument", head, err)
		}
	}

	big := strings.Repeat("y", 4000)
	l, err = parseUIDList(strings.NewReader("3 V1\n5 P" + big + " G" + big + " :" + big + "\n6 P" + big + " G" + big + " :short\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.byBase) != 1 {
		t.Errorf("a file name no file system allows was kept: %d entries", len(l.byBase))
	}
	if e := l.byBase["short"]; len(e.pop3) > fsm.MaxPOP3UIDL+1 || len(e.guid) > fsm.MaxPOP3UIDL+1 || fsm.ValidPOP3UIDL(e.pop3) {
		t.Errorf("an over-long P or G field keeps %d and %d octets", len(e.pop3), len(e.guid))
	}

	var many strings.Builder
	many.WriteString("3 V1\n")
	for i := range 50 {
		fmt.Fprintf(&many, "%d :f%d\n", i+1, i)
	}
	l, err = parseUIDListMax(strings.NewReader(many.String()), 20)
	if err != nil || len(l.byBase) != 20 {
		t.Errorf("with room for 20 entries: %d, %v", len(l.byBase), err)
	}
}
