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
	a.applyInBatches(MaxFolders-len(have), func(i int) Command {
		return &FolderCreate{Mailbox: addr, Name: fmt.Sprintf("f%05d", len(have)+i), Distinct: true}
	})
	refused("past the limit")
	mb, err := a.s.Mailbox(addr)
	if err != nil || mb.NextFolderID < MaxFolders {
		t.Fatalf("NextFolderID %d (%v), want past %d", mb.NextFolderID, err, MaxFolders)
	}
	const gone = 100
	a.applyInBatches(2*gone, func(i int) Command {
		if i < gone {
			return &FolderDelete{Mailbox: addr, Name: fmt.Sprintf("f%05d", len(have)+i)}
		}
		return &FolderCreate{Mailbox: addr, Name: fmt.Sprintf("g%05d", i-gone), Distinct: true}
	})
	refused("past the limit after deletes and creates")
}

// applyInBatches applies cmd(0) .. cmd(n-1) in raft batches of 1,000
// entries, as a busy replica applies them, and fails on any refusal.
func (a *applier) applyInBatches(n int, cmd func(i int) Command) {
	a.t.Helper()
	const batch = 1000
	cs := make([]Command, 0, batch)
	for i := range n {
		cs = append(cs, cmd(i))
		if len(cs) == batch || i == n-1 {
			for j, r := range a.applyBatch(cs) {
				if r.Err != nil {
					a.t.Fatalf("%T %d: %v", cs[j], j, r.Err)
				}
			}
			cs = cs[:0]
		}
	}
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
