package fsm

import (
	"fmt"
	"testing"
)

// BenchmarkFolderCreateAmongMany measures the apply of one FolderCreate
// (IMAP CREATE) in a mailbox that already has N folders, as every
// replica applies it while other commits wait. Each created folder is
// deleted again, untimed, so N stays put. Run with -benchtime 200x.
func BenchmarkFolderCreateAmongMany(b *testing.B) {
	for _, n := range []int{100, 1000, 5000, 9000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			a := deliveryFixture(b)
			a.applyInBatches(n, func(i int) Command {
				return &FolderCreate{Mailbox: "a@example.com", Name: fmt.Sprintf("P/f%05d", i)}
			})
			i := 0
			for b.Loop() {
				name := fmt.Sprintf("Q/x%d", i)
				i++
				if r := a.applyAs(&FolderCreate{Mailbox: "a@example.com", Name: name}, NewestEncoding); r.Err != nil {
					b.Fatal(r.Err)
				}
				b.StopTimer()
				if r := a.applyAs(&FolderDelete{Mailbox: "a@example.com", Name: name}, NewestEncoding); r.Err != nil {
					b.Fatal(r.Err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkFolderRenameOfManyChildren measures the apply of one
// FolderRename (IMAP RENAME) of a folder with N children, which moves
// every child's record in the one entry. Run with -benchtime 2x.
func BenchmarkFolderRenameOfManyChildren(b *testing.B) {
	for _, n := range []int{1000, 5000, 9000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			a := deliveryFixture(b)
			var cs []Command
			for i := range n {
				cs = append(cs, &FolderCreate{Mailbox: "a@example.com", Name: fmt.Sprintf("P/f%05d", i)})
			}
			a.applyBatch(cs)
			a.applyAs(&FolderCreate{Mailbox: "a@example.com", Name: "P"}, NewestEncoding)
			from, to := "P", "Q"
			for b.Loop() {
				if r := a.applyAs(&FolderRename{Mailbox: "a@example.com", From: from, To: to}, NewestEncoding); r.Err != nil {
					b.Fatal(r.Err)
				}
				from, to = to, from
			}
		})
	}
}
