package fsm

import (
	"errors"
	"fmt"
	"testing"
)

// The folder limit holds whichever way FolderCreate finds it: while a
// mailbox has made fewer than MaxFolders folders in all it does not
// count them, and once it has (NextFolderID past the limit) it counts:
// one that holds MaxFolders is refused, and one that deleted some since
// creates again up to the limit. The entries go in raft batches of
// 1,000, as a busy replica applies them.
func TestFolderLimitAfterChurn(t *testing.T) {
	a := deliveryFixture(t)
	const addr = "a@example.com"
	var batch []Command
	flush := func() {
		for i, r := range a.applyBatch(batch) {
			if r.Err != nil {
				t.Fatalf("%T %d: %v", batch[i], i, r.Err)
			}
		}
		batch = batch[:0]
	}
	queue := func(c Command) {
		if batch = append(batch, c); len(batch) == 1000 {
			flush()
		}
	}
	refused := func(what string) {
		t.Helper()
		r := a.applyAs(&FolderCreate{Mailbox: addr, Name: "one-more", Distinct: true}, NewestEncoding)
		var fe *Error
		if !errors.As(r.Err, &fe) || fe.Kind != ErrInvalid {
			t.Fatalf("CREATE %s: %v, want ErrInvalid", what, r.Err)
		}
		if fs, err := a.s.Folders(addr); err != nil || len(fs) != MaxFolders {
			t.Fatalf("%d folders (%v), want %d", len(fs), err, MaxFolders)
		}
	}
	have, err := a.s.Folders(addr)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(have); i < MaxFolders; i++ {
		queue(&FolderCreate{Mailbox: addr, Name: fmt.Sprintf("f%05d", i), Distinct: true})
	}
	flush()
	refused("past the limit")
	mb, err := a.s.Mailbox(addr)
	if err != nil || mb.NextFolderID < MaxFolders {
		t.Fatalf("NextFolderID %d (%v), want past %d", mb.NextFolderID, err, MaxFolders)
	}
	const gone = 100
	for i := range gone {
		queue(&FolderDelete{Mailbox: addr, Name: fmt.Sprintf("f%05d", len(have)+i)})
	}
	for i := range gone {
		queue(&FolderCreate{Mailbox: addr, Name: fmt.Sprintf("g%05d", i), Distinct: true})
	}
	flush()
	refused("past the limit after deletes and creates")
}

// applyBatch applies cs as one raft batch, each in the newest encoding.
func (a *applier) applyBatch(cs []Command) []Result {
	a.t.Helper()
	entries := make([]Entry, len(cs))
	for i, c := range cs {
		data, err := EncodeAs(c, NewestEncoding)
		if err != nil {
			a.t.Fatal(err)
		}
		a.index++
		entries[i] = Entry{Index: a.index, Data: data}
	}
	return a.s.ApplyBatch(entries)
}
