package node

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"powermail/fsm"
)

// Mailbox export: every folder of one mailbox as a Maildir++ tree in a
// tar stream, the layout Dovecot and Courier read (an administrator's
// backup before a removal, a user's data export, a move to another
// server).
//
//   - INBOX is Maildir/ itself; another folder is Maildir/.<name>/, with
//     its hierarchy "/" written as "." and each level in modified UTF-7
//     (RFC 3501 §5.1.3). A "." inside a level cannot be told from the
//     hierarchy there, so it is written as "&AC4-", its UTF-7 form; a
//     folder called "maildir" gets its first letter in UTF-7 too, since
//     restore reads ".maildir" as a Maildir's root.
//   - Every folder has cur/, new/ and tmp/; messages go to cur/ as their
//     exact stored octets, named "<date>.P<uid>V<uidvalidity>.powermail,
//     S=<size>:2,<flags>", with the file time set to the internal date.
//   - Flags: D \Draft, F \Flagged, R \Answered, S \Seen, T \Deleted;
//     keywords are the letters a-z that the folder's dovecot-keywords
//     file names (26 at most; a message's further ones are left out).
//
// Each folder is read at one index; the folders one after another. A
// message expunged after its folder was read, whose body is gone by the
// time the export gets to it, is left out.

// ErrExportBroken: a body's length differs from its record while it is
// being exported; the archive is incomplete.
var ErrExportBroken = errors.New("export: body shorter than its record")

// ExportMailbox writes the mailbox addr to w as a tar stream (see above).
// An error after the first octets leaves the stream incomplete: the
// caller must not present it as an export.
func (n *Node) ExportMailbox(ctx context.Context, addr string, w io.Writer) error {
	folders, err := n.Folders(ctx, addr)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, f := range folders {
		if err := n.exportFolder(ctx, tw, addr, f.Name); err != nil {
			return fmt.Errorf("export %s %s: %w", addr, f.Name, err)
		}
	}
	return tw.Close()
}

func (n *Node) exportFolder(ctx context.Context, tw *tar.Writer, addr, name string) error {
	view, err := n.View(ctx, addr, name)
	if errors.Is(err, ErrNoFolder) {
		return nil // removed since the listing
	}
	if err != nil {
		return err
	}
	dir := maildirDir(name)
	for _, sub := range []string{"", "cur/", "new/", "tmp/"} {
		if dir+sub == "" {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + sub, Mode: 0o700, ModTime: time.Now()}); err != nil {
			return err
		}
	}
	// The keywords file goes first, so that a reader of the stream knows
	// every letter before the first message that uses one.
	var kw maildirKeywords
	for _, m := range view.Messages {
		maildirName(m, 0, &kw)
	}
	if len(kw) > 0 {
		file := kw.file()
		if err := tw.WriteHeader(&tar.Header{Name: dir + "dovecot-keywords", Mode: 0o600, Size: int64(len(file)), ModTime: time.Now()}); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, file); err != nil {
			return err
		}
	}
	for _, m := range view.Messages {
		if err := n.exportMessage(ctx, tw, addr, name, dir, view.Folder.UIDValidity, m, &kw); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) exportMessage(ctx context.Context, tw *tar.Writer, addr, folder, dir string, validity uint32, m fsm.Message, kw *maildirKeywords) error {
	body, err := n.OpenBody(ctx, m.Hash)
	if err != nil {
		// A long export races the mailbox's user: a message expunged
		// since its folder was read may have lost its body to the
		// collection already. It is left out, as an export a moment
		// later would leave it; the rest of the mailbox still goes out.
		if gone, gerr := n.goneSinceView(ctx, addr, folder, m); gerr == nil && gone {
			n.log.Info("mailbox export: message expunged during the export, left out", "mailbox", addr, "folder", folder, "uid", m.UID)
			return nil
		}
		return fmt.Errorf("UID %d: %w", m.UID, err)
	}
	defer body.Close()
	// Whole seconds, as the name has them: the tar writer would round
	// (23:59:59.6 to the next day).
	date := time.UnixMilli(m.InternalDate).Truncate(time.Second)
	hdr := &tar.Header{Name: dir + "cur/" + maildirName(m, validity, kw), Mode: 0o600, Size: m.Size, ModTime: date}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	// To the end, not just Size octets: the body's hash is checked there.
	copied, err := io.Copy(tw, body)
	if err == nil && copied != m.Size {
		err = ErrExportBroken
	}
	if err != nil {
		return fmt.Errorf("UID %d after %d of %d octets: %w", m.UID, copied, m.Size, err)
	}
	return nil
}

// goneSinceView reports whether m is no longer in the folder as the
// cluster has it now: expunged, or its folder deleted.
func (n *Node) goneSinceView(ctx context.Context, addr, folder string, m fsm.Message) (bool, error) {
	if err := n.readBarrier(ctx); err != nil {
		return false, err
	}
	now, err := n.state.Messages(addr, folder, m.UID-1, 1)
	if errors.Is(err, fsm.ErrNoFolder) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return len(now) == 0 || now[0].UID != m.UID || now[0].Hash != m.Hash, nil
}

// maildirDir is the folder's directory in the archive, ending in "/".
func maildirDir(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "Maildir/"
	}
	levels := strings.Split(name, "/")
	for i, l := range levels {
		levels[i] = strings.ReplaceAll(mutf7(l), ".", "&AC4-")
	}
	if len(levels) == 1 && strings.EqualFold(name, "maildir") {
		// ".maildir" reads back as a Maildir's root (restore); its first
		// letter in UTF-7 keeps it a folder.
		levels[0] = "&" + base64.RawStdEncoding.EncodeToString([]byte{0, name[0]}) + "-" + name[1:]
	}
	return "Maildir/." + strings.Join(levels, ".") + "/"
}

// maildirName is a message's file name in cur/.
func maildirName(m fsm.Message, validity uint32, kw *maildirKeywords) string {
	var flags []byte
	for _, f := range m.Flags {
		switch strings.ToLower(f) {
		case `\draft`:
			flags = append(flags, 'D')
		case `\flagged`:
			flags = append(flags, 'F')
		case `\answered`:
			flags = append(flags, 'R')
		case `\seen`:
			flags = append(flags, 'S')
		case `\deleted`:
			flags = append(flags, 'T')
		default:
			if c, ok := kw.letter(f); ok {
				flags = append(flags, c)
			}
		}
	}
	slices.Sort(flags)
	flags = slices.Compact(flags)
	return strconv.FormatInt(m.InternalDate/1000, 10) + ".P" + strconv.FormatUint(uint64(m.UID), 10) +
		"V" + strconv.FormatUint(uint64(validity), 10) + ".powermail,S=" + strconv.FormatInt(m.Size, 10) + ":2," + string(flags)
}

// maildirKeywords are a folder's keywords in the order first met; the
// i-th has the letter 'a'+i.
type maildirKeywords []string

func (k *maildirKeywords) letter(keyword string) (byte, bool) {
	if strings.HasPrefix(keyword, `\`) {
		return 0, false // \Recent and other system flags have no letter
	}
	i := slices.IndexFunc(*k, func(s string) bool { return strings.EqualFold(s, keyword) })
	if i < 0 {
		if len(*k) == 26 {
			return 0, false
		}
		*k = append(*k, keyword)
		i = len(*k) - 1
	}
	return byte('a' + i), true
}

// file is the dovecot-keywords file: "<index> <keyword>" per line.
func (k maildirKeywords) file() string {
	var b strings.Builder
	for i, w := range k {
		fmt.Fprintf(&b, "%d %s\n", i, w)
	}
	return b.String()
}

// mutf7 encodes s in modified UTF-7 (RFC 3501 §5.1.3): printable ASCII
// stands for itself ("&" as "&-"), anything else is UTF-16 in modified
// base64 ("," for "/") between "&" and "-".
func mutf7(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"
	var out strings.Builder
	var run []rune
	flush := func() {
		if len(run) == 0 {
			return
		}
		var octets []byte
		for _, u := range utf16.Encode(run) {
			octets = append(octets, byte(u>>8), byte(u))
		}
		out.WriteByte('&')
		for i := 0; i < len(octets); i += 3 {
			var v uint32
			n := min(3, len(octets)-i)
			for j := range 3 {
				v <<= 8
				if j < n {
					v |= uint32(octets[i+j])
				}
			}
			for j := range n + 1 {
				out.WriteByte(alphabet[(v>>(18-6*j))&0x3f])
			}
		}
		out.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				out.WriteString("&-")
			} else {
				out.WriteRune(r)
			}
			continue
		}
		run = append(run, r)
	}
	flush()
	return out.String()
}

// exportHandler streams ExportMailbox. A failure before the first octet
// is an ordinary JSON error; after it, the connection is cut, so that the
// client reads an incomplete response, never an archive that looks whole.
func (n *Node) exportHandler(w http.ResponseWriter, r *http.Request) {
	addr := r.PathValue("address")
	if err := n.readBarrier(r.Context()); err != nil {
		writeError(w, err)
		return
	}
	if _, err := n.state.Mailbox(addr); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	sw := &startedWriter{w: w}
	if err := n.ExportMailbox(r.Context(), addr, sw); err != nil {
		n.log.Warn("mailbox export failed", "mailbox", addr, "err", err)
		if !sw.started {
			writeError(w, err)
			return
		}
		panic(http.ErrAbortHandler)
	}
	n.log.Info("mailbox exported", "mailbox", addr)
}

// startedWriter records whether anything was written.
type startedWriter struct {
	w       io.Writer
	started bool
}

func (s *startedWriter) Write(p []byte) (int, error) {
	s.started = true
	return s.w.Write(p)
}
