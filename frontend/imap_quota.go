package frontend

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// QUOTA (RFC 9208), answered below the library as ID is (imap_wire.go):
// go-imap's server does not know the commands, so imapConn sends each to
// the library as a NOOP and turns the NOOP's tagged OK into the QUOTA
// responses, which the session prepared when the command was read.
//
// A mailbox has one quota root, "", for all its folders, with the one
// resource PowerMail limits: STORAGE, in units of 1024 octets (§5.1),
// counting every message of every folder. A mailbox without a quota has
// no quota root (§4.3.2 allows an empty list); GETQUOTAROOT of a folder
// that does not exist gets NO [NONEXISTENT]. Quotas are the
// administrator's (mailbox quota): SETQUOTA gets NO [NOPERM].

// imapQuotaCaps is what QUOTA adds to every capability list (§3.1).
const imapQuotaCaps = " QUOTA QUOTA=RES-STORAGE"

// imapQuotaCommand reports whether name is a command answered here.
func imapQuotaCommand(name string) bool {
	return name == "GETQUOTAROOT" || name == "GETQUOTA" || name == "SETQUOTA"
}

// quotaReply prepares the answer to GETQUOTAROOT, GETQUOTA or SETQUOTA:
// the untagged lines and the tagged status that follows the tag.
func (s *imapSession) quotaReply(name string, args []byte) (lines, status string) {
	s.mu.Lock()
	addr := s.addr
	s.mu.Unlock()
	if addr == "" {
		return "", "BAD [CLIENTBUG] Not authenticated"
	}
	if name == "SETQUOTA" {
		return "", "NO [NOPERM] Quotas are set by the administrator"
	}
	arg, rest, ok := imapAstring(args)
	if !ok || len(rest) > 0 {
		return "", "BAD [CLIENTBUG] " + name + " takes one argument"
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	u, err := s.srv.store.Usage(ctx, addr)
	if err != nil {
		return "", imapStatusText(s.storeError("quota", err, imap.ResponseCodeNonExistent))
	}
	if name == "GETQUOTAROOT" {
		folder, err := mutf7Decode(arg.value)
		if err != nil {
			return "", "BAD [CLIENTBUG] Invalid mailbox name"
		}
		if status := s.quotaFolderMissing(ctx, addr, folder); status != "" {
			return "", status
		}
	}
	limited := u.QuotaBytes > 0
	resource := fmt.Sprintf("* QUOTA \"\" (STORAGE %d %d)\r\n", kib(u.UsedBytes), kib(u.QuotaBytes))
	if name == "GETQUOTA" {
		if arg.value != "" || !limited {
			return "", "NO [NONEXISTENT] No such quota root"
		}
		return resource, "OK GETQUOTA completed"
	}
	if !limited {
		return "* QUOTAROOT " + quotaRootName(arg) + "\r\n", "OK GETQUOTAROOT completed"
	}
	return "* QUOTAROOT " + quotaRootName(arg) + " \"\"\r\n" + resource, "OK GETQUOTAROOT completed"
}

// quotaRootName is the mailbox as QUOTAROOT gives it back (RFC 9208
// §5.2): as the client sent it, unless it has 8-bit octets (raw UTF-8,
// which the name's decoding lets through, as the library's does). A
// quoted string holds those only once the client has enabled IMAP4rev2
// or UTF8=ACCEPT (RFC 3501 §4.3 and §9: QUOTED-CHAR is 7-bit; RFC 6855
// §3), so such a name goes back as a literal, which holds any octet but
// NUL in either (RFC 9051 §4.3). CR, LF and NUL never get this far: the
// name named a folder, and folder names have no control characters.
func quotaRootName(arg imapArg) string {
	for i := range len(arg.raw) {
		if arg.raw[i] >= 0x80 {
			return fmt.Sprintf("{%d}\r\n%s", len(arg.value), arg.value)
		}
	}
	return arg.raw
}

// quotaFolderMissing is the tagged status for GETQUOTAROOT of a folder
// that does not exist (RFC 9208 §4.3.2: NO), or "" when it exists.
func (s *imapSession) quotaFolderMissing(ctx context.Context, addr, name string) string {
	n, err := lookupFolder(name, imap.ResponseCodeNonExistent)
	if err == nil {
		_, err = s.srv.store.Folder(ctx, addr, n)
		if err != nil {
			err = s.storeError("quota", err, imap.ResponseCodeNonExistent)
		}
	}
	if err != nil {
		return imapStatusText(err)
	}
	return ""
}

// kib rounds octets up to units of 1024 (RFC 9208 §5.1).
func kib(n int64) int64 { return (max(n, 0) + 1023) / 1024 }

// imapStatusText renders a session error as a tagged status without the
// tag: "NO [CODE] text".
func imapStatusText(err error) string {
	ie, ok := err.(*imap.Error)
	if !ok {
		return "NO [UNAVAILABLE] Temporarily unavailable, try again"
	}
	var b strings.Builder
	b.WriteString(string(ie.Type))
	if ie.Code != "" {
		b.WriteString(" [" + string(ie.Code) + "]")
	}
	b.WriteString(" " + ie.Text)
	return b.String()
}

// imapArg is one astring argument: as sent (raw, echoed back) and its
// value.
type imapArg struct{ raw, value string }

// imapAstring reads one atom or quoted string from the start of b (RFC
// 9051 §9: astring; a literal never gets here, since a line that ends in
// one passes to the library) and returns the rest after one space.
func imapAstring(b []byte) (imapArg, []byte, bool) {
	if len(b) == 0 {
		return imapArg{}, nil, false
	}
	if b[0] != '"' {
		end := bytes.IndexByte(b, ' ')
		if end < 0 {
			end = len(b)
		}
		atom := b[:end]
		if bytes.ContainsAny(atom, "(){\"\\%*") || bytes.ContainsFunc(atom, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return imapArg{}, nil, false
		}
		return imapArg{raw: string(atom), value: string(atom)}, bytes.TrimPrefix(b[end:], []byte(" ")), true
	}
	var v []byte
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\\' && i+1 < len(b) && (b[i+1] == '"' || b[i+1] == '\\'):
			i++
			v = append(v, b[i])
		case c == '"':
			return imapArg{raw: string(b[:i+1]), value: string(v)}, bytes.TrimPrefix(b[i+1:], []byte(" ")), true
		case c == '\\', c == '\r', c == '\n':
			return imapArg{}, nil, false
		default:
			v = append(v, c)
		}
	}
	return imapArg{}, nil, false
}
