package frontend

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"powermail/node"
)

// imapListEntry is a name LIST can return: a folder, or a parent level
// that does not exist itself but has folders below it ("a" of "a/b").
type imapListEntry struct {
	folder     *node.Folder // nil: a missing parent
	children   bool
	subscribed bool // some descendant is subscribed
}

// List answers LIST and LSUB (RFC 9051 section 6.3.9) with LIST-EXTENDED
// selection and return options (RFC 5258), LIST-STATUS (RFC 5819) and
// special-use attributes (RFC 6154), from one Folders read: the counters
// LIST-STATUS needs are in the folder records.
//
// Only the session's own folders are ever listed, whatever reference or
// pattern the client sends ("#shared", "~bob", "bob@example.com/...").
func (s *imapSession) List(w *imapserver.ListWriter, ref string, patterns []string, o *imap.ListOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr, err := s.user()
	if err != nil {
		return err
	}
	if len(patterns) == 0 {
		// LIST "" "": the hierarchy delimiter and root (RFC 9051 6.3.9).
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: imapDelim})
	}
	if o == nil {
		o = &imap.ListOptions{}
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	folders, err := s.srv.store.Folders(ctx, addr)
	if err != nil {
		return s.storeError("list", err, imap.ResponseCodeNonExistent)
	}

	entries, names := imapListEntries(folders)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			// Many long patterns against many long names: matching is
			// bounded per pair, and the command by CommandTimeout.
			return s.storeError("list", err, imap.ResponseCodeNonExistent)
		}
		e := entries[name]
		matched, byPercent := imapListMatch(name, ref, patterns)
		if !matched {
			continue
		}
		data, listed, status := imapListData(name, e, byPercent, o)
		if !listed {
			continue
		}
		if status && o.ReturnStatus != nil {
			if data.Status, err = s.listStatus(ctx, addr, *e.folder, o.ReturnStatus); err != nil {
				return err
			}
		}
		if err := w.WriteList(&data); err != nil {
			return err
		}
	}
	return nil
}

// imapListEntries is an entry per folder and per missing parent of one,
// and their names in order. Every level above a folder has children, and
// a subscribed child when the folder is subscribed. A top level spelt
// INBOX in any case is INBOX.
func imapListEntries(folders []node.Folder) (map[string]*imapListEntry, []string) {
	entries := map[string]*imapListEntry{}
	for i := range folders {
		f := &folders[i]
		if e := entries[f.Name]; e != nil {
			e.folder = f
		} else {
			entries[f.Name] = &imapListEntry{folder: f}
		}
		for p := f.Name; strings.Contains(p, "/"); {
			p = p[:strings.LastIndexByte(p, '/')]
			if strings.EqualFold(p, "INBOX") {
				// The top level of "inbox/Sub" is INBOX, whatever its
				// case (RFC 9051 §5.1), and goes out on the wire as
				// INBOX: it is that folder, not a missing parent
				// listed beside it.
				p = "INBOX"
			}
			e := entries[p]
			if e == nil {
				e = &imapListEntry{}
				entries[p] = e
			}
			e.children = true
			e.subscribed = e.subscribed || f.Subscribed
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	slices.Sort(names)
	return entries, names
}

// imapListData is the LIST response for a name that matched, whether the
// options list it at all, and whether it is a folder listed in its own
// right, which gets a STATUS for LIST-STATUS (the caller's to add).
func imapListData(name string, e *imapListEntry, byPercent bool, o *imap.ListOptions) (data imap.ListData, listed, status bool) {
	data = imap.ListData{Mailbox: name, Delim: imapDelim}
	f := e.folder
	switch {
	case f == nil:
		// A missing parent is listed only where "%" stops at its level
		// (RFC 9051 section 6.3.9), or, with RECURSIVEMATCH, for its
		// subscribed children (RFC 5258 section 3.5).
		recursive := o.SelectSubscribed && o.SelectRecursiveMatch && e.subscribed
		if (!byPercent || o.SelectSubscribed || o.SelectSpecialUse) && !recursive {
			return data, false, false
		}
		// \NonExistent implies \Noselect (RFC 5258 section 3); a
		// client of IMAP4rev1 that does not know the former is told
		// the latter too, so that it does not try to select it.
		data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent, imap.MailboxAttrNoSelect, imap.MailboxAttrHasChildren)
		if recursive {
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
	case o.SelectSubscribed && !f.Subscribed:
		if !(o.SelectRecursiveMatch && e.subscribed) {
			return data, false, false
		}
		data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		data.Attrs = append(data.Attrs, imapChildrenAttr(e))
	case o.SelectSpecialUse && f.SpecialUse == "":
		return data, false, false
	default:
		data.Attrs = append(data.Attrs, imapChildrenAttr(e))
		if f.Subscribed && (o.SelectSubscribed || o.ReturnSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if f.SpecialUse != "" {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(f.SpecialUse))
		}
		status = true
	}
	return data, true, status
}

func imapChildrenAttr(e *imapListEntry) imap.MailboxAttr {
	if e.children {
		return imap.MailboxAttrHasChildren
	}
	return imap.MailboxAttrHasNoChildren
}

// imapListMatch reports whether name matches any pattern under ref, and
// whether one that matched ends in "%" (so a missing parent is listed).
// INBOX matches case-insensitively, as it is named.
func imapListMatch(name, ref string, patterns []string) (matched, byPercent bool) {
	for _, p := range patterns {
		ok := imapMatchList(name, ref, p)
		if !ok && name == "INBOX" {
			ok = imapMatchList(name, strings.ToUpper(ref), strings.ToUpper(p))
		}
		if ok {
			matched = true
			if strings.HasSuffix(p, "%") {
				byPercent = true
			}
		}
	}
	return matched, byPercent
}

// imapMatchList is imapserver.MatchList (RFC 9051 section 6.3.9: a
// pattern starting with the delimiter ignores the reference, else the
// reference is a prefix ending in the delimiter), without its cost:
// that one tries every way the wildcards could split the name, so "*a"
// eight times then "b" against a name of 200 a's (a folder the user can
// create) kept a core busy for days on one LIST.
func imapMatchList(name, ref, pattern string) bool {
	if strings.HasPrefix(pattern, string(imapDelim)) {
		ref, pattern = "", pattern[1:]
	}
	if ref != "" {
		if !strings.HasSuffix(ref, string(imapDelim)) {
			ref += string(imapDelim)
		}
		rest, ok := strings.CutPrefix(name, ref)
		if !ok {
			return false
		}
		name = rest
	}
	return imapGlob(name, pattern)
}

// imapGlob matches name against a pattern where "*" matches any octets
// and "%" any octets but the delimiter. It follows every position in the
// pattern at once (a set of states per octet of the name), so it costs
// len(name) × len(pattern) steps at most, and a pattern with more
// literal octets than the name has is refused before any.
func imapGlob(name, pattern string) bool {
	literals := len(pattern) - strings.Count(pattern, "*") - strings.Count(pattern, "%")
	if literals > len(name) {
		return false
	}
	cur := make([]bool, len(pattern)+1)
	next := make([]bool, len(pattern)+1)
	cur[0] = true
	imapGlobSkip(cur, pattern)
	for i := 0; i < len(name); i++ {
		c := name[i]
		clear(next)
		any := false
		for j := 0; j < len(pattern); j++ {
			if !cur[j] {
				continue
			}
			switch p := pattern[j]; {
			case p == '*', p == '%' && c != imapDelim:
				next[j], any = true, true // the wildcard takes c and goes on
			case p == c:
				next[j+1], any = true, true
			}
		}
		if !any {
			return false
		}
		imapGlobSkip(next, pattern)
		cur, next = next, cur
	}
	return cur[len(pattern)]
}

// imapGlobSkip adds to states the positions reached by letting
// wildcards match nothing.
func imapGlobSkip(states []bool, pattern string) {
	for j := 0; j < len(pattern); j++ {
		if states[j] && (pattern[j] == '*' || pattern[j] == '%') {
			states[j+1] = true
		}
	}
}

// listStatus is the STATUS of a listed folder (RFC 5819), nil for one
// deleted, or replaced by another under its name, since it was listed:
// the server may omit the STATUS of a mailbox it cannot select (RFC 5819
// section 2), and one folder going must not fail the whole LIST.
func (s *imapSession) listStatus(ctx context.Context, addr string, f node.Folder, o *imap.StatusOptions) (*imap.StatusData, error) {
	d, err := s.statusData(ctx, addr, f, o, true)
	if errors.Is(err, node.ErrNoFolder) {
		return nil, nil
	}
	if err != nil {
		return nil, s.storeError("list", err, imap.ResponseCodeNonExistent)
	}
	d.Mailbox = f.Name
	return d, nil
}
