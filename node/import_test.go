package node

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"powermail/fsm"
)

// restoreCluster is one node with the mailbox a@example.com.
func restoreCluster(t *testing.T) *Node {
	t.Helper()
	c := newTestClusterWith(t, 1, func(cfg *Config) { cfg.BootstrapSettings = &BootstrapSettings{Replicas: 1, WriteQuorum: 1} })
	l := c.leader(10 * time.Second)
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	mustApply(t, l, addMailbox("a@example.com"))
	return l
}

// tarEntry is one entry of a test archive: a file, or a hard link to
// an earlier one when link is set.
type tarEntry struct{ name, content, link string }

func buildTar(t *testing.T, entries ...tarEntry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o600, Size: int64(len(e.content)), ModTime: time.Unix(1_700_000_000, 0)}
		if e.link != "" {
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.content))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// folderFlags lists a folder's messages' flags, in UID order.
func folderFlags(t *testing.T, n *Node, folder string) [][]string {
	t.Helper()
	v, err := n.View(ctxT(t, 10*time.Second), "a@example.com", folder)
	if err != nil {
		t.Fatalf("view %s: %v", folder, err)
	}
	var out [][]string
	for _, m := range v.Messages {
		out = append(out, m.Flags)
	}
	return out
}

// A dovecot-keywords file may name words that are no IMAP keyword (8-bit,
// controls, too long): those are left out, as a word with a space is, and
// the restore goes on with the rest.
func TestRestoreSkipsKeywordsThatAreNoAtoms(t *testing.T) {
	n := restoreCluster(t)
	long := string(bytes.Repeat([]byte("k"), fsm.MaxKeyword+1))
	res, err := n.RestoreMailbox(ctxT(t, 30*time.Second), "a@example.com", buildTar(t,
		tarEntry{name: "Maildir/dovecot-keywords", content: "0 Ключ\n1 Good\n2 tab\tbed\n3 " + long + "\n"},
		tarEntry{name: "Maildir/cur/1.M1.h:2,Sabcd", content: "Subject: 1\r\n\r\none\r\n"},
		tarEntry{name: "Maildir/.Late/cur/2.M2.h:2,Sab", content: "Subject: 2\r\n\r\ntwo\r\n"},
		tarEntry{name: "Maildir/.Late/dovecot-keywords", content: "0 \x01bad\n1 Fine\n"},
	), 0)
	if err != nil || res.Added != 2 {
		t.Fatalf("restore: %+v, %v", res, err)
	}
	if got := folderFlags(t, n, "INBOX"); !slices.Equal(got[0], []string{"Good", `\Seen`}) {
		t.Errorf("INBOX flags %q", got)
	}
	if got := folderFlags(t, n, "Late"); !slices.Equal(got[0], []string{"Fine", `\Seen`}) {
		t.Errorf("Late flags %q", got)
	}
}

// A message in two folders of a Dovecot Maildir is one file with two
// hard links (Dovecot copies so), and tar stores the second as a link to
// the first: the restore puts it in both folders, with each name's flags.
func TestRestoreFollowsHardLinks(t *testing.T) {
	n := restoreCluster(t)
	msg := "Subject: copied\r\n\r\nin two folders\r\n"
	big := "Subject: big\r\n\r\n" + string(bytes.Repeat([]byte("b"), 2000)) + "\r\n"
	res, err := n.RestoreMailbox(ctxT(t, 30*time.Second), "a@example.com", buildTar(t,
		tarEntry{name: "home/ivy/Maildir/cur/1.M1.h:2,S", content: msg},
		tarEntry{name: "home/ivy/Maildir/.Archive/cur/1.M1.h:2,FS", link: "home/ivy/Maildir/cur/1.M1.h:2,S"},
		tarEntry{name: "home/ivy/Maildir/cur/2.M2.h:2,", content: big},
		tarEntry{name: "home/ivy/Maildir/.Archive/cur/2.M2.h:2,", link: "home/ivy/Maildir/cur/2.M2.h:2,"},
		tarEntry{name: "home/ivy/Maildir/.Archive/cur/3.M3.h:2,", link: "home/ivy/Maildir/dovecot-uidlist"},
	), 1000)
	if err != nil || res.Added != 2 || res.TooLarge != 2 {
		t.Fatalf("restore: %+v, %v; want 2 added and the big message counted twice as too large", res, err)
	}
	if got := folderFlags(t, n, "Archive"); len(got) != 1 || !slices.Equal(got[0], []string{`\Flagged`, `\Seen`}) {
		t.Errorf("Archive flags %q, want the linked message with F and S", got)
	}
	if got := folderFlags(t, n, "INBOX"); len(got) != 1 || !slices.Equal(got[0], []string{`\Seen`}) {
		t.Errorf("INBOX flags %q", got)
	}
}

// A message in a directory whose name is no Maildir++ folder name (not
// modified UTF-7, an empty level) is not dropped without a word: the
// restore stops there and names the directory, as it does for a folder
// name the mailbox refuses.
func TestRestoreRefusesAFolderItCannotName(t *testing.T) {
	n := restoreCluster(t)
	res, err := n.RestoreMailbox(ctxT(t, 30*time.Second), "a@example.com", buildTar(t,
		tarEntry{name: "Maildir/cur/1.M1.h:2,S", content: "Subject: 1\r\n\r\none\r\n"},
		tarEntry{name: "Maildir/.R&D/cur/2.M2.h:2,S", content: "Subject: 2\r\n\r\ntwo\r\n"},
	), 0)
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), ".R&D") || res.Added != 1 {
		t.Fatalf("restore: %+v, %v; want one added, then an error naming .R&D", res, err)
	}
}

// A restore run again with a smaller max_bytes than the one that
// restored a large message finds it already there: it counts as a
// duplicate, not as too large (which tells the operator to run again
// with a larger limit, though nothing is missing). One too large that
// is not there, and a link to it, still count as too large.
func TestRestoreAgainCountsALargeMessageThereAsDuplicate(t *testing.T) {
	n := restoreCluster(t)
	big := "Subject: big\nFrom: a@example.com\n\n" + strings.Repeat("b", 2000) + "\n"
	other := "Subject: other\r\n\r\n" + strings.Repeat("o", 2000) + "\r\n"
	first := buildTar(t,
		tarEntry{name: "Maildir/cur/1.M1.h:2,S", content: big},
		tarEntry{name: "Maildir/.Archive/cur/1.M1.h:2,S", link: "Maildir/cur/1.M1.h:2,S"},
	)
	if res, err := n.RestoreMailbox(ctxT(t, 30*time.Second), "a@example.com", first, 0); err != nil || res.Added != 2 {
		t.Fatalf("first restore: %+v, %v", res, err)
	}
	again := buildTar(t,
		tarEntry{name: "Maildir/cur/1.M1.h:2,S", content: big},
		tarEntry{name: "Maildir/.Archive/cur/1.M1.h:2,S", link: "Maildir/cur/1.M1.h:2,S"},
		tarEntry{name: "Maildir/cur/2.M2.h:2,", content: other},
		tarEntry{name: "Maildir/.Archive/cur/2.M2.h:2,", link: "Maildir/cur/2.M2.h:2,"},
	)
	res, err := n.RestoreMailbox(ctxT(t, 30*time.Second), "a@example.com", again, 1000)
	if err != nil || res.Added != 0 || res.Duplicates != 2 || res.TooLarge != 2 {
		t.Fatalf("restore again with max_bytes 1000: %+v, %v; want the big one (and its link) duplicates, the other (and its link) too large", res, err)
	}
}

// An io.ErrUnexpectedEOF is the operator's cut archive only when the
// archive's own reader gave it; one from elsewhere (a body read back
// from a peer whose stream was cut) is not blamed on the archive.
func TestRestoreBlamesOnlyTheArchiveForAnEarlyEnd(t *testing.T) {
	cut := archiveEntry{io.MultiReader(strings.NewReader("part of a message"), iotest.ErrReader(io.ErrUnexpectedEOF))}
	_, err := io.ReadAll(cut)
	got := entryError("a/cur/1", err)
	if !errors.Is(got, ErrInvalidArgument) || !strings.Contains(got.Error(), "ends early inside a/cur/1") {
		t.Errorf("archive cut inside an entry: %v, want an invalid argument saying the archive ends early", got)
	}
	peer := fmt.Errorf("%w: body of the link's target, read back from the cluster: %w", ErrUnavailable, io.ErrUnexpectedEOF)
	got = entryError("a/cur/2", peer)
	if errors.Is(got, ErrInvalidArgument) || strings.Contains(got.Error(), "ends early") || !errors.Is(got, ErrUnavailable) {
		t.Errorf("a peer's stream cut: %v, want a temporary failure that does not blame the archive", got)
	}
}

// A hard link's target within max_bytes as the archive has it may be
// stored larger: bare LF line ends are stored as CRLF. The link reads
// the stored body back whole and gets the same message, not a read cut
// at max_bytes that then fails its hash check.
func TestRestoreLinkToAMessageGrownByCRLF(t *testing.T) {
	n := restoreCluster(t)
	msg := "Subject: lines\nFrom: a@example.com\n\n" + strings.Repeat("line\n", 180)
	const maxBytes = 1000
	if len(msg) > maxBytes || len(strings.ReplaceAll(msg, "\n", "\r\n")) <= maxBytes {
		t.Fatalf("test message of %d bytes is not within max_bytes only with bare LFs", len(msg))
	}
	res, err := n.RestoreMailbox(ctxT(t, 30*time.Second), "a@example.com", buildTar(t,
		tarEntry{name: "Maildir/cur/1.M1.h:2,S", content: msg},
		tarEntry{name: "Maildir/.Archive/cur/1.M1.h:2,FS", link: "Maildir/cur/1.M1.h:2,S"},
	), maxBytes)
	if err != nil || res.Added != 2 {
		t.Fatalf("restore: %+v, %v; want the message and its link added", res, err)
	}
	ctx := ctxT(t, 10*time.Second)
	in, err := n.View(ctx, "a@example.com", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	ar, err := n.View(ctx, "a@example.com", "Archive")
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Messages) != 1 || len(ar.Messages) != 1 || in.Messages[0].Hash != ar.Messages[0].Hash {
		t.Fatalf("INBOX %+v, Archive %+v: want one message each, the same body", in.Messages, ar.Messages)
	}
}
