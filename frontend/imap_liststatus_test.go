package frontend_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"powermail/frontend"
	"powermail/node"
	"powermail/node/nodetest"
)

// viewRacer is a real node whose first View of one folder is preceded by
// another client's change to that folder: the interleaving a LIST-STATUS
// meets when a folder goes between the listing and the read of its
// messages.
type viewRacer struct {
	*node.Node
	folder string
	race   func(ctx context.Context) error
	once   sync.Once
}

func (r *viewRacer) View(ctx context.Context, addr, name string) (node.FolderView, error) {
	if name == r.folder {
		var err error
		r.once.Do(func() { err = r.race(ctx) })
		if err != nil {
			return node.FolderView{}, err
		}
	}
	return r.Node.View(ctx, addr, name)
}

// TestIMAPListStatusSkipsAVanishedFolder: LIST RETURN (STATUS
// (DELETED-STORAGE)) reads the messages of each folder with \Deleted
// ones after listing them. A folder deleted in between, or replaced by
// another under its name, is listed without a STATUS (RFC 5819 section
// 2: the server MAY omit it for a mailbox it cannot select); it used to
// fail the whole LIST with NO [NONEXISTENT].
func TestIMAPListStatusSkipsAVanishedFolder(t *testing.T) {
	c := nodetest.Start(t, 1)
	n := c.Nodes[0]
	for _, replace := range []bool{false, true} {
		name := map[bool]string{false: "deleted", true: "replaced"}[replace]
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			user := imapNewAddr(t)
			c.AddMailboxes(imapPassword, user)
			for _, f := range []string{"Gone", "Stay"} {
				if err := n.CreateFolder(ctx, user, f, ""); err != nil {
					t.Fatal(err)
				}
				if _, err := n.Append(ctx, user, f, []string{`\Deleted`}, time.Time{}, strings.NewReader("Subject: x\r\n\r\nbody\r\n")); err != nil {
					t.Fatal(err)
				}
			}
			r := &viewRacer{Node: n, folder: "Gone", race: func(ctx context.Context) error {
				if err := n.DeleteFolder(ctx, user, "Gone"); err != nil || !replace {
					return err
				}
				return n.CreateFolder(ctx, user, "Gone", "")
			}}
			s := dialIMAPRaw(t, startIMAP(t, r, frontend.IMAPConfig{}, true), user)
			u, tagged := s.cmd(`LIST "" "*" RETURN (STATUS (MESSAGES DELETED-STORAGE))`)
			if !strings.HasPrefix(tagged, "OK") {
				t.Fatalf("LIST-STATUS with a folder %s meanwhile: %s", name, tagged)
			}
			var listed, stayStatus bool
			for _, l := range u {
				switch {
				case strings.HasPrefix(l, "* LIST ") && strings.HasSuffix(l, ` "Gone"`):
					listed = true
				case strings.HasPrefix(l, "* STATUS Gone") || strings.HasPrefix(l, `* STATUS "Gone"`):
					t.Errorf("STATUS of the folder %s after listing: %q", name, l)
				case strings.HasPrefix(l, "* STATUS Stay ") || strings.HasPrefix(l, `* STATUS "Stay" `):
					stayStatus = strings.Contains(l, "MESSAGES 1") && strings.Contains(l, "DELETED-STORAGE ")
				}
			}
			if !listed || !stayStatus {
				t.Errorf("LIST-STATUS: Gone listed %v, Stay's STATUS %v; want both: %q", listed, stayStatus, u)
			}
		})
	}
}
