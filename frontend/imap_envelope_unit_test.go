package frontend

import (
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// How a refused address field is read entry by entry.
func TestIMAPLenientAddresses(t *testing.T) {
	for _, tc := range []struct {
		field string
		want  []imap.Address
	}{
		{`"Doe, J." <j.@x.example>, bad@`, []imap.Address{{Name: "Doe, J.", Mailbox: "j.", Host: "x.example"}}},
		{`a@x.example (Comment, with comma), <b..c@x.example>`, []imap.Address{
			{Name: "Comment, with comma", Mailbox: "a", Host: "x.example"}, {Mailbox: "b..c", Host: "x.example"}}},
		{`List: a.@x.example, b@x.example;, c@x.example`, []imap.Address{
			{Mailbox: "a.", Host: "x.example"}, {Mailbox: "b", Host: "x.example"}, {Mailbox: "c", Host: "x.example"}}},
		{`John Doe john.@x.example`, []imap.Address{{Mailbox: "john.", Host: "x.example"}}},
		{`undisclosed-recipients:;`, nil},
		{`nobody, @x.example, y@`, nil},
	} {
		if got := imapLenientAddresses(tc.field); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.field, got, tc.want)
		}
	}
}
