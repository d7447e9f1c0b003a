package frontend_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// runIMAPSuite is one subtest per IMAP command (group), each driven by
// go-imap's client over a real socket. Where the cluster matters, a
// message goes in through one node and is looked at through another.
func runIMAPSuite(t *testing.T, b imapBackend) {
	tests := []struct {
		name string
		fn   func(*testing.T, imapBackend)
	}{
		{"Capability", testIMAPCapability},
		{"Login", testIMAPLogin},
		{"SelectExamine", testIMAPSelectExamine},
		{"CreateDeleteRename", testIMAPCreateDeleteRename},
		{"CreateMakesSuperiors", testIMAPCreateMakesSuperiors},
		{"RefusedCreateMakesNoSuperiors", testIMAPRefusedCreateMakesNoSuperiors},
		{"ListLsubSubscribe", testIMAPList},
		{"ListPatternCost", testIMAPListPatternCost},
		{"UnsubscribeMissing", testIMAPUnsubscribeMissing},
		{"SelectSendsList", testIMAPSelectSendsList},
		{"StoreManyFlagsCost", testIMAPStoreManyFlagsCost},
		{"ExpungeHalfOfALargeFolder", testIMAPExpungeHalfOfALargeFolder},
		{"StoreOnAScatteredSearchResult", testIMAPStoreOnAScatteredSearchResult},
		{"Status", testIMAPStatus},
		{"Append", testIMAPAppend},
		{"Fetch", testIMAPFetch},
		{"FetchSetsSeen", testIMAPFetchSetsSeen},
		{"FetchPastAMalformedHeaderLine", testIMAPFetchMalformedHeader},
		{"FetchBinaryKeepsCharset", testIMAPFetchBinaryKeepsCharset},
		{"BodyStructureDeepNesting", testIMAPBodyStructureDeepNesting},
		{"BrokenMultipartSectionsMatchTheirStructure", testIMAPBrokenMultipartSectionsMatchTheirStructure},
		{"Search", testIMAPSearch},
		{"SearchCharsets", testIMAPSearchCharsets},
		{"SearchLongMarkRun", testIMAPSearchLongMarkRun},
		{"Store", testIMAPStore},
		{"StoreSeenOnOtherNode", testIMAPStoreOtherNode},
		{"StoreOnAMessageExpungedElsewhere", testIMAPStoreExpungedElsewhere},
		{"CopyMove", testIMAPCopyMove},
		{"ExpungeClose", testIMAPExpungeClose},
		{"ExpungeDeferredDuringFetch", testIMAPExpungeDeferred},
		{"NoopSeesOtherNodes", testIMAPNoop},
		{"Idle", testIMAPIdle},
		{"Namespace", testIMAPNamespace},
		{"Isolation", testIMAPIsolation},
		{"VanishedFolder", testIMAPVanishedFolder},
		{"AppendBesideAVanishedFolder", testIMAPAppendBesideAVanishedFolder},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

func testIMAPCapability(t *testing.T, b imapBackend) {
	c := dialIMAPAnon(t, b.server(0))
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []imap.Cap{imap.CapIMAP4rev1, imap.CapIMAP4rev2, imap.CapSASLIR, "AUTH=PLAIN"} {
		if !caps.Has(want) {
			t.Errorf("before login: %s missing from %v", want, caps)
		}
	}
	if caps.Has(imap.CapLoginDisabled) {
		t.Errorf("LOGINDISABLED advertised although insecure auth is allowed")
	}
	user := b.newUser(t)
	if err := c.Login(user, imapPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	caps, err = c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []imap.Cap{imap.CapIMAP4rev2, imap.CapIdle, imap.CapMove, imap.CapUIDPlus, imap.CapNamespace,
		imap.CapUnselect, imap.CapSpecialUse, imap.CapCreateSpecialUse, imap.CapListExtended, imap.CapListStatus,
		imap.CapEnable, imap.CapLiteralPlus, imap.CapESearch, imap.CapSearchRes, imap.CapBinary, imap.CapStatusSize,
		imap.CapChildren} {
		if !caps.Has(want) {
			t.Errorf("after login: %s missing from %v", want, caps)
		}
	}
	if limit, ok := caps.AppendLimit(); !ok || limit == nil || *limit != 50<<20 {
		t.Errorf("APPENDLIMIT = %v %v, want 50 MiB", ok, limit)
	}
}

func testIMAPLogin(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	c := dialIMAPAnon(t, b.server(1))
	wantIMAPCode(t, "LOGIN with a wrong password", c.Login(user, "wrong").Wait(), imap.ResponseCodeAuthenticationFailed)
	wantIMAPCode(t, "LOGIN of an unknown user", c.Login("nobody@example.com", imapPassword).Wait(), imap.ResponseCodeAuthenticationFailed)
	if err := c.Login(strings.ToUpper(user), imapPassword).Wait(); err != nil {
		t.Fatalf("LOGIN with the address in upper case: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("SELECT after LOGIN: %v", err)
	}

	// AUTHENTICATE PLAIN with an initial response (SASL-IR).
	c2 := dialIMAPAnon(t, b.server(2))
	if err := c2.Authenticate(sasl.NewPlainClient("", user, "wrong")); err == nil {
		t.Fatal("AUTHENTICATE PLAIN with a wrong password succeeded")
	}
	if err := c2.Authenticate(sasl.NewPlainClient("", user, imapPassword)); err != nil {
		t.Fatalf("AUTHENTICATE PLAIN: %v", err)
	}
	if _, err := c2.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("SELECT after AUTHENTICATE: %v", err)
	}
	// A second login on the same connection is a client error.
	if err := c2.Login(user, imapPassword).Wait(); err == nil {
		t.Fatal("LOGIN in the authenticated state succeeded")
	}
}

func testIMAPSelectExamine(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	b.deliver(t, 0, imapTestMsg("one", "first"), user)
	b.deliver(t, 0, imapTestMsg("two", "second"), user)

	c := dialIMAP(t, b, 2, user) // read through another node
	d, err := c.Select("inbox", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if d.NumMessages != 2 || d.UIDNext != 3 || d.UIDValidity == 0 {
		t.Fatalf("SELECT: %d messages, UIDNEXT %d, UIDVALIDITY %d; want 2, 3, non-zero", d.NumMessages, d.UIDNext, d.UIDValidity)
	}
	if !slices.Contains(d.PermanentFlags, imap.FlagWildcard) || !slices.Contains(d.Flags, imap.FlagSeen) {
		t.Errorf("SELECT: FLAGS %v PERMANENTFLAGS %v", d.Flags, d.PermanentFlags)
	}
	validity := d.UIDValidity

	// EXAMINE is read-only: no flag changes, no \Seen from BODY[], no
	// EXPUNGE; CLOSE does not expunge.
	d, err = c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if d.UIDValidity != validity || len(d.PermanentFlags) != 0 {
		t.Errorf("EXAMINE: UIDVALIDITY %d (was %d), PERMANENTFLAGS %v (want none)", d.UIDValidity, validity, d.PermanentFlags)
	}
	err = c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
	if err == nil {
		t.Error("STORE in a read-only mailbox succeeded")
	}
	if _, err := c.Expunge().Collect(); err == nil {
		t.Error("EXPUNGE in a read-only mailbox succeeded")
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH BODY[]: %v, %d messages", err, len(msgs))
	}
	if err := c.UnselectAndExpunge().Wait(); err != nil {
		t.Fatalf("CLOSE after EXAMINE: %v", err)
	}
	d, err = c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	msgs, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH FLAGS: %v", err)
	}
	if slices.Contains(msgs[0].Flags, imap.FlagSeen) {
		t.Error("FETCH BODY[] under EXAMINE set \\Seen")
	}

	wantIMAPCode(t, "SELECT of a missing folder", func() error { _, err := c.Select("NoSuchFolder", nil).Wait(); return err }(),
		imap.ResponseCodeNonExistent)
	// A failed SELECT leaves the authenticated state (RFC 9051 6.3.2).
	if _, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect(); err == nil {
		t.Errorf("FETCH after a failed SELECT succeeded: a mailbox is still selected")
	}
}

func testIMAPCreateDeleteRename(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	c := dialIMAP(t, b, 0, user)
	other := dialIMAP(t, b, 1, user) // sees the changes through another node

	if err := c.Create("Projects/2024", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Archive/", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrArchive}}).Wait(); err != nil {
		t.Fatalf("CREATE with USE (\\Archive) and a trailing delimiter: %v", err)
	}
	wantIMAPCode(t, "CREATE of an existing folder", c.Create("Projects/2024", nil).Wait(), imap.ResponseCodeAlreadyExists)
	wantIMAPCode(t, "CREATE INBOX", c.Create("inbox", nil).Wait(), imap.ResponseCodeAlreadyExists)
	wantIMAPCode(t, "CREATE with an unknown special use",
		c.Create("Odd", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{"\\Bogus"}}).Wait(), "USEATTR")
	for _, bad := range []string{"a//b", "../x", "#shared/x", "a/./b"} {
		if err := c.Create(bad, nil).Wait(); err == nil {
			t.Errorf("CREATE %q succeeded", bad)
		}
	}

	names := listNames(t, other.Client, "", "*")
	for _, want := range []string{"INBOX", "Projects/2024", "Archive", "Sent", "Trash"} {
		if !slices.Contains(names, want) {
			t.Errorf("LIST \"\" * on another node: %q missing from %v", want, names)
		}
	}

	// CREATE Projects/2024 made Projects too (testIMAPCreateMakesSuperiors).
	wantIMAPCode(t, "CREATE of a superior name CREATE made", c.Create("Projects", nil).Wait(), imap.ResponseCodeAlreadyExists)
	if err := c.Rename("Projects", "Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	names = listNames(t, other.Client, "", "*")
	if !slices.Contains(names, "Work/2024") || slices.Contains(names, "Projects/2024") || slices.Contains(names, "Projects") {
		t.Errorf("after RENAME Projects Work: %v, want the child renamed too", names)
	}
	wantIMAPCode(t, "RENAME onto an existing folder", c.Rename("Work", "Archive", nil).Wait(), imap.ResponseCodeAlreadyExists)
	wantIMAPCode(t, "RENAME of a missing folder", c.Rename("Nope", "Nope2", nil).Wait(), imap.ResponseCodeNonExistent)
	// The target of a RENAME onto its own name, or onto INBOX, exists
	// whenever the source does (RFC 9051 section 7.1, ALREADYEXISTS).
	wantIMAPCode(t, "RENAME onto itself", c.Rename("Archive", "Archive/", nil).Wait(), imap.ResponseCodeAlreadyExists)
	wantIMAPCode(t, "RENAME inbox INBOX", c.Rename("inbox", "INBOX", nil).Wait(), imap.ResponseCodeAlreadyExists)
	wantIMAPCode(t, "RENAME onto INBOX", c.Rename("Archive", "Inbox", nil).Wait(), imap.ResponseCodeAlreadyExists)
	wantIMAPCode(t, "RENAME of a missing folder onto itself", c.Rename("Nope", "Nope", nil).Wait(), imap.ResponseCodeNonExistent)

	if err := c.Delete("Work/2024").Wait(); err != nil {
		t.Fatal(err)
	}
	wantIMAPCode(t, "DELETE of a missing folder", c.Delete("Work/2024").Wait(), imap.ResponseCodeNonExistent)
	if err := c.Delete("INBOX").Wait(); err == nil {
		t.Error("DELETE INBOX succeeded")
	}
	names = listNames(t, other.Client, "", "*")
	if slices.Contains(names, "Work/2024") || !slices.Contains(names, "Work") {
		t.Errorf("after DELETE Work/2024: %v", names)
	}

	// RENAME INBOX moves its messages to the new folder; INBOX stays.
	b.deliver(t, 2, imapTestMsg("inboxmsg", "x"), user)
	if err := c.Rename("INBOX", "Old", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	st, err := other.Status("Old", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 1 {
		t.Fatalf("STATUS Old after RENAME INBOX: %v %v", st, err)
	}
	st, err = other.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 0 {
		t.Fatalf("STATUS INBOX after RENAME INBOX: %v %v", st, err)
	}
}

func listNames(t *testing.T, c *imapclient.Client, ref, pattern string) []string {
	t.Helper()
	l, err := c.List(ref, pattern, nil).Collect()
	if err != nil {
		t.Fatalf("LIST %q %q: %v", ref, pattern, err)
	}
	var out []string
	for _, d := range l {
		out = append(out, d.Mailbox)
	}
	return out
}

func listData(t *testing.T, c *imapclient.Client, ref, pattern string, o *imap.ListOptions) map[string]*imap.ListData {
	t.Helper()
	l, err := c.List(ref, pattern, o).Collect()
	if err != nil {
		t.Fatalf("LIST %q %q: %v", ref, pattern, err)
	}
	out := map[string]*imap.ListData{}
	for _, d := range l {
		out[d.Mailbox] = d
	}
	return out
}

func testIMAPList(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	c := dialIMAP(t, b, 0, user)
	for _, n := range []string{"a/b/c", "a/x", "z"} {
		if err := c.Create(n, nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	// CREATE made the superiors a and a/b; without them (deleted, their
	// children kept) the parents are missing.
	for _, n := range []string{"a", "a/b"} {
		if err := c.Delete(n).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	b.deliver(t, 1, imapTestMsg("hi", "x"), user)

	// "%" stops at a level; the missing parent "a" is listed as
	// \NonExistent with \HasChildren.
	top := listData(t, c.Client, "", "%", nil)
	if a := top["a"]; a == nil || !slices.Contains(a.Attrs, imap.MailboxAttrNonExistent) || !slices.Contains(a.Attrs, imap.MailboxAttrHasChildren) ||
		!slices.Contains(a.Attrs, imap.MailboxAttrNoSelect) {
		t.Errorf(`LIST "" %%: a = %+v, want \NonExistent \HasChildren`, top["a"])
	}
	if _, ok := top["a/x"]; ok {
		t.Errorf(`LIST "" %%: listed a/x`)
	}
	if z := top["z"]; z == nil || !slices.Contains(z.Attrs, imap.MailboxAttrHasNoChildren) || z.Delim != '/' {
		t.Errorf(`LIST "" %%: z = %+v`, top["z"])
	}
	if s := top["Sent"]; s == nil || !slices.Contains(s.Attrs, imap.MailboxAttrSent) {
		t.Errorf(`LIST: Sent = %+v, want \Sent`, top["Sent"])
	}
	// Reference and pattern.
	if got := listNames(t, c.Client, "a/", "%"); !slices.Equal(got, []string{"a/b", "a/x"}) {
		t.Errorf(`LIST "a/" %%: %v, want [a/b a/x]`, got)
	}
	// With "*" a missing parent is not listed: its children are.
	if got := listNames(t, c.Client, "", "a/*"); !slices.Equal(got, []string{"a/b/c", "a/x"}) {
		t.Errorf(`LIST "" a/*: %v, want [a/b/c a/x]`, got)
	}
	if got := listNames(t, c.Client, "", "inbox"); !slices.Equal(got, []string{"INBOX"}) {
		t.Errorf(`LIST "" inbox: %v, want [INBOX]`, got)
	}
	// LIST "" "": the delimiter.
	l, err := c.List("", "", nil).Collect()
	if err != nil || len(l) != 1 || l[0].Delim != '/' || !slices.Contains(l[0].Attrs, imap.MailboxAttrNoSelect) {
		t.Errorf(`LIST "" "": %+v %v`, l, err)
	}

	// SUBSCRIBE / UNSUBSCRIBE, LSUB, LIST (SUBSCRIBED), RETURN (STATUS).
	if err := c.Unsubscribe("z").Wait(); err != nil {
		t.Fatal(err)
	}
	wantIMAPCode(t, "SUBSCRIBE of a missing folder", c.Subscribe("nope").Wait(), imap.ResponseCodeNonExistent)
	sub := listData(t, c.Client, "", "*", &imap.ListOptions{SelectSubscribed: true})
	if _, ok := sub["z"]; ok {
		t.Errorf("LIST (SUBSCRIBED) lists unsubscribed z")
	}
	if d := sub["a/x"]; d == nil || !slices.Contains(d.Attrs, imap.MailboxAttrSubscribed) {
		t.Errorf("LIST (SUBSCRIBED): a/x = %+v, want \\Subscribed", sub["a/x"])
	}
	if err := c.Subscribe("z").Wait(); err != nil {
		t.Fatal(err)
	}
	lsub, err := c.List("", "*", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil || !slices.ContainsFunc(lsub, func(d *imap.ListData) bool { return d.Mailbox == "z" }) {
		t.Errorf("z not subscribed again: %v", err)
	}

	st := listData(t, c.Client, "", "INBOX", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true, UIDNext: true, Size: true}})
	in := st["INBOX"]
	if in == nil || in.Status == nil || in.Status.NumMessages == nil || *in.Status.NumMessages != 1 || in.Status.UIDNext != 2 ||
		in.Status.Size == nil || *in.Status.Size == 0 {
		t.Errorf("LIST RETURN (STATUS): %+v", in)
	}
	su := listData(t, c.Client, "", "*", &imap.ListOptions{SelectSpecialUse: true})
	if _, ok := su["z"]; ok || su["Trash"] == nil {
		t.Errorf("LIST (SPECIAL-USE): %v", su)
	}
}

func testIMAPStatus(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	b.deliver(t, 0, imapTestMsg("s1", "x"), user)
	b.deliver(t, 0, imapTestMsg("s2", "yy"), user)
	b.deliver(t, 0, imapTestMsg("s3", "zzz"), user)
	c := dialIMAP(t, b, 1, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{RFC822Size: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, m := range msgs {
		size += m.RFC822Size
	}

	o := &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true, NumDeleted: true, Size: true}
	c2 := dialIMAP(t, b, 2, user)
	st, err := c2.Status("INBOX", o).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if *st.NumMessages != 3 || st.UIDNext != 4 || st.UIDValidity == 0 || *st.NumUnseen != 2 || *st.NumDeleted != 1 || *st.Size != size {
		t.Errorf("STATUS: messages %d uidnext %d uidvalidity %d unseen %d deleted %d size %d; want 3 4 >0 2 1 %d",
			*st.NumMessages, st.UIDNext, st.UIDValidity, *st.NumUnseen, *st.NumDeleted, *st.Size, size)
	}
	_, err = c2.Status("Nope", o).Wait()
	wantIMAPCode(t, "STATUS of a missing folder", err, imap.ResponseCodeNonExistent)
}

func testIMAPAppend(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	c := dialIMAP(t, b, 0, user)
	raw := imapTestMsg("appended", "body of the appended message")
	date := time.Date(2020, 5, 17, 8, 30, 0, 0, time.FixedZone("", 2*3600))
	data := appendMsg(t, c.Client, "Drafts", raw, &imap.AppendOptions{Flags: []imap.Flag{imap.FlagDraft, "$Work"}, Time: date})
	if data.UID != 1 || data.UIDValidity == 0 {
		t.Fatalf("APPENDUID %d %d, want UID 1", data.UIDValidity, data.UID)
	}

	// Read it back through another node, byte for byte.
	c2 := dialIMAP(t, b, 2, user)
	sel, err := c2.Select("Drafts", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.UIDValidity != data.UIDValidity || sel.NumMessages != 1 {
		t.Fatalf("SELECT Drafts: %+v", sel)
	}
	msgs, err := c2.Fetch(imap.UIDSetNum(data.UID), &imap.FetchOptions{Flags: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("UID FETCH: %v %d", err, len(msgs))
	}
	m := msgs[0]
	if got := string(m.FindBodySection(&imap.FetchItemBodySection{Peek: true})); got != raw {
		t.Errorf("BODY[] = %q, want %q", got, raw)
	}
	if !m.InternalDate.Equal(date) {
		t.Errorf("INTERNALDATE %v, want %v", m.InternalDate, date)
	}
	if !slices.Contains(m.Flags, imap.FlagDraft) || !slices.Contains(m.Flags, "$Work") {
		t.Errorf("FLAGS %v, want \\Draft $Work", m.Flags)
	}

	// While selected, an APPEND to the selected folder is announced.
	c2.ev.drain()
	appendMsg(t, c2.Client, "Drafts", imapTestMsg("second", "x"), nil)
	if n := c2.Mailbox().NumMessages; n != 2 {
		t.Errorf("after APPEND to the selected folder the client counts %d messages, want 2 (EXISTS)", n)
	}

	// Errors.
	cmd := c.Append("NoSuchFolder", int64(len(raw)), nil)
	cmd.Write([]byte(raw))
	cmd.Close()
	_, err = cmd.Wait()
	wantIMAPCode(t, "APPEND to a missing folder", err, imap.ResponseCodeTryCreate)
	cmd = c.Append("INBOX", 51<<20, nil)
	_, err = cmd.Wait()
	if err == nil || imapCode(err) != imap.ResponseCodeTooBig {
		t.Errorf("APPEND over APPENDLIMIT: %v, want NO [TOOBIG]", err)
	}
	cmd.Close()
}

func appendMsg(t *testing.T, c *imapclient.Client, folder, raw string, o *imap.AppendOptions) *imap.AppendData {
	t.Helper()
	cmd := c.Append(folder, int64(len(raw)), o)
	if _, err := cmd.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := cmd.Wait()
	if err != nil {
		t.Fatalf("APPEND to %s: %v", folder, err)
	}
	return d
}

func testIMAPFetch(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	simple := imapTestMsg("plain subject", "simple body line")
	b.deliver(t, 0, simple, user)
	b.deliver(t, 1, imapMultipart, user)
	c := dialIMAP(t, b, 2, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}

	hdr := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true}
	part1 := &imap.FetchItemBodySection{Part: []int{1}, Peek: true}
	partial := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 6, Size: 6}}
	text := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText, Peek: true}
	bin := &imap.FetchItemBinarySection{Part: []int{2}, Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2), &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection:   []*imap.FetchItemBodySection{hdr, part1, partial, text},
		BinarySection: []*imap.FetchItemBinarySection{bin},
	}).Collect()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("FETCH: %v, %d messages", err, len(msgs))
	}
	m1, m2 := msgs[0], msgs[1]
	if m1.UID != 1 || m2.UID != 2 || m1.SeqNum != 1 {
		t.Errorf("UIDs %d %d", m1.UID, m2.UID)
	}
	if m1.RFC822Size != int64(len(simple)) || m2.RFC822Size != int64(len(imapMultipart)) {
		t.Errorf("RFC822.SIZE %d %d, want %d %d", m1.RFC822Size, m2.RFC822Size, len(simple), len(imapMultipart))
	}
	if m1.InternalDate.IsZero() || time.Since(m1.InternalDate) > time.Hour {
		t.Errorf("INTERNALDATE %v", m1.InternalDate)
	}
	if e := m1.Envelope; e == nil || e.Subject != "plain subject" || len(e.From) != 1 || e.From[0].Addr() != "sender@example.org" ||
		e.MessageID != "plain.subject@example.org" {
		t.Errorf("ENVELOPE %+v", m1.Envelope)
	}
	if got := string(m1.FindBodySection(hdr)); got != "Subject: plain subject\r\n\r\n" {
		t.Errorf("BODY[HEADER.FIELDS (Subject)] = %q", got)
	}
	if got := string(m1.FindBodySection(part1)); got != "simple body line\r\n" {
		t.Errorf("BODY[1] of a single-part message = %q", got)
	}
	if got := string(m1.FindBodySection(partial)); got != simple[6:12] {
		t.Errorf("BODY[]<6.6> = %q, want %q", got, simple[6:12])
	}
	if got := string(m1.FindBodySection(text)); got != "simple body line\r\n" {
		t.Errorf("BODY[TEXT] = %q", got)
	}
	if got := string(m2.FindBodySection(part1)); got != "Hello from the plain part" {
		t.Errorf("BODY[1] of the multipart = %q", got)
	}
	if got := m2.FindBinarySection(bin); !bytes.Equal(got, []byte{0, 1, 2, 0xff}) {
		t.Errorf("BINARY[2] = %x, want 000102ff", got)
	}
	mp, ok := m2.BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || mp.Subtype != "mixed" || len(mp.Children) != 2 {
		t.Fatalf("BODYSTRUCTURE %#v", m2.BodyStructure)
	}
	if p := mp.Children[1].(*imap.BodyStructureSinglePart); p.Type != "application" || p.Encoding != "base64" {
		t.Errorf("BODYSTRUCTURE part 2: %+v", p)
	}
	if slices.Contains(m1.Flags, imap.FlagSeen) {
		t.Errorf("PEEK set \\Seen")
	}

	// BINARY.SIZE, the FAST-like set, and a UID range with "*".
	bs := &imap.FetchItemBinarySectionSize{Part: []int{2}}
	msgs, err = c.Fetch(imap.UIDSet{{Start: 2, Stop: 0}}, &imap.FetchOptions{BinarySectionSize: []*imap.FetchItemBinarySectionSize{bs}}).Collect()
	if err != nil || len(msgs) != 1 || len(msgs[0].BinarySectionSize) != 1 || msgs[0].BinarySectionSize[0].Size != 4 {
		t.Fatalf("UID FETCH 2:* BINARY.SIZE[2]: %v %+v", err, msgs)
	}
	// A sequence number past the end is a client error; "1:*" is fine.
	if _, err := c.Fetch(imap.SeqSetNum(3), &imap.FetchOptions{Flags: true}).Collect(); err == nil {
		t.Error("FETCH 3 in a 2-message mailbox succeeded")
	}
	msgs, err = c.Fetch(imap.UIDSetNum(99), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil || len(msgs) != 0 {
		t.Errorf("UID FETCH of a missing UID: %v %d messages, want OK and none", err, len(msgs))
	}
}

// A header line that is no field (an mbox "From " line, a stray word)
// must not hide the fields after it from ENVELOPE, BODY[HEADER.FIELDS],
// BODYSTRUCTURE or SEARCH.
func testIMAPFetchMalformedHeader(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	raw := "From someone@example.org Sat Nov 28 10:00:00 2026\r\n" +
		"X-Stray\r\n  continued stray\r\n" +
		"From: Sender <sender@example.org>\r\n" +
		"Bad Name: no\r\n" +
		"Subject: after the junk\r\n" +
		"Content-Type: multipart/alternative; boundary=b1\r\n" +
		"\r\n--b1\r\nContent-Type: text/plain\r\n\r\nplain part\r\n" +
		"--b1\r\nContent-Type: text/html\r\n\r\n<p>hello</p>\r\n--b1--\r\n"
	b.deliver(t, 0, raw, user)
	c := dialIMAP(t, b, 1, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	fields := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject", "From"}, Peek: true}
	part1 := &imap.FetchItemBodySection{Part: []int{1}, Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true,
		BodyStructure: &imap.FetchItemBodyStructure{}, BodySection: []*imap.FetchItemBodySection{fields, part1}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH: %v, %d messages", err, len(msgs))
	}
	m := msgs[0]
	if e := m.Envelope; e == nil || e.Subject != "after the junk" || len(e.From) != 1 || e.From[0].Addr() != "sender@example.org" {
		t.Errorf("ENVELOPE %+v", e)
	}
	if got, want := string(m.FindBodySection(fields)), "From: Sender <sender@example.org>\r\nSubject: after the junk\r\n\r\n"; got != want {
		t.Errorf("BODY[HEADER.FIELDS (Subject From)] = %q, want %q", got, want)
	}
	if mp, ok := m.BodyStructure.(*imap.BodyStructureMultiPart); !ok || mp.Subtype != "alternative" || len(mp.Children) != 2 {
		t.Errorf("BODYSTRUCTURE %#v, want multipart/alternative of two", m.BodyStructure)
	}
	if got := string(m.FindBodySection(part1)); got != "plain part" {
		t.Errorf("BODY[1] = %q, want the plain part", got)
	}
	uids, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "junk"}}}, nil).Wait()
	if err != nil || len(uids.AllUIDs()) != 1 {
		t.Errorf("SEARCH HEADER Subject junk: %v, %v", uids, err)
	}
}

func testIMAPFetchSetsSeen(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	b.deliver(t, 0, imapTestMsg("seen", "x"), user)
	c := dialIMAP(t, b, 1, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatal(err)
	}
	if !slices.Contains(msgs[0].Flags, imap.FlagSeen) {
		t.Errorf("FETCH BODY[] response flags %v, want \\Seen included (RFC 9051 6.4.5)", msgs[0].Flags)
	}
	c2 := dialIMAP(t, b, 2, user)
	st, err := c2.Status("INBOX", &imap.StatusOptions{NumUnseen: true}).Wait()
	if err != nil || *st.NumUnseen != 0 {
		t.Errorf("UNSEEN after FETCH BODY[] = %v (%v), want 0", st, err)
	}
}

func testIMAPSearch(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	b.deliver(t, 0, imapTestMsg("apple pie", "recipe with cinnamon"), user)
	b.deliver(t, 1, imapTestMsg("banana bread", "needs ripe bananas and more text to be larger"), user)
	b.deliver(t, 2, imapMultipart, user)
	c := dialIMAP(t, b, 0, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged, "$Todo"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	sizes := map[uint32]int64{}
	msgs, _ := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{RFC822Size: true}).Collect()
	for _, m := range msgs {
		sizes[m.SeqNum] = m.RFC822Size
	}
	today := time.Now()
	cases := []searchCase{
		{"ALL", imap.SearchCriteria{}, []uint32{1, 2, 3}},
		{"FLAGGED", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, []uint32{2}},
		{"keyword, other case", imap.SearchCriteria{Flag: []imap.Flag{"$todo"}}, []uint32{2}},
		{"UNFLAGGED", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagFlagged}}, []uint32{1, 3}},
		{"UNSEEN", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, []uint32{1, 2, 3}},
		{"SUBJECT", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "BANANA"}}}, []uint32{2}},
		{"FROM", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: "multi@"}}}, []uint32{3}},
		{"HEADER present", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "MIME-Version", Value: ""}}}, []uint32{3}},
		{"BODY", imap.SearchCriteria{Body: []string{"cinnamon"}}, []uint32{1}},
		{"BODY not in header", imap.SearchCriteria{Body: []string{"apple"}}, nil},
		{"BODY in a MIME part", imap.SearchCriteria{Body: []string{"plain part"}}, []uint32{3}},
		{"TEXT header", imap.SearchCriteria{Text: []string{"apple"}}, []uint32{1}},
		{"LARGER", imap.SearchCriteria{Larger: sizes[1]}, []uint32{2, 3}},
		{"SMALLER", imap.SearchCriteria{Smaller: sizes[2]}, []uint32{1}},
		{"SINCE today", imap.SearchCriteria{Since: today.AddDate(0, 0, -1)}, []uint32{1, 2, 3}},
		{"BEFORE yesterday", imap.SearchCriteria{Before: today.AddDate(0, 0, -1)}, nil},
		{"SENTBEFORE", imap.SearchCriteria{SentBefore: time.Date(2006, 1, 3, 0, 0, 0, 0, time.UTC)}, []uint32{1, 2}},
		{"SENTON", imap.SearchCriteria{SentSince: time.Date(2006, 1, 3, 0, 0, 0, 0, time.UTC), SentBefore: time.Date(2006, 1, 4, 0, 0, 0, 0, time.UTC)}, []uint32{3}},
		{"seq set", imap.SearchCriteria{SeqNum: []imap.SeqSet{{{Start: 2, Stop: 0}}}}, []uint32{2, 3}},
		{"UID set", imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(1, 3)}}, []uint32{1, 3}},
		{"NOT", imap.SearchCriteria{Not: []imap.SearchCriteria{{Body: []string{"cinnamon"}}}}, []uint32{2, 3}},
		{"OR", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Flag: []imap.Flag{imap.FlagFlagged}}, {Body: []string{"cinnamon"}}}}}, []uint32{1, 2}},
	}
	wantSearches(t, c, cases)

	// UID SEARCH with ESEARCH return options.
	d, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagFlagged}},
		&imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true}).Wait()
	if err != nil || d.Min != 1 || d.Max != 3 || d.Count != 2 {
		t.Fatalf("UID SEARCH RETURN (MIN MAX COUNT): %+v %v", d, err)
	}

	// SAVE and "$" (RFC 5182), spoken raw: imapclient cannot send them.
	r := dialIMAPRaw(t, b.server(1), user)
	r.ok("SELECT INBOX")
	r.want("UID SEARCH RETURN (MIN MAX SAVE) UNFLAGGED", `* ESEARCH (TAG "`, " UID MIN 1 MAX 3")
	r.want("UID SEARCH UID $", "* SEARCH 1 3")
	// SAVE alone: saved, and no ESEARCH (RFC 5182 section 2.4), as a
	// UID SEARCH too; with another option, the ESEARCH as usual.
	for _, cmd := range []string{"UID SEARCH RETURN (SAVE) FLAGGED", "SEARCH return (save) FLAGGED"} {
		if u := r.ok(cmd); len(u) != 0 {
			t.Errorf("%s: %q, want no untagged response", cmd, u)
		}
	}
	r.want("UID FETCH $ (FLAGS)", "* 2 FETCH (UID 2 FLAGS (")
	r.ok("STORE $ +FLAGS.SILENT ($Saved)")
	r.want("SEARCH KEYWORD $Saved", "* SEARCH 2")
	r.want("SEARCH RETURN (COUNT) NOT $", `* ESEARCH (TAG "`, " COUNT 2")
}

// searchCase is a SEARCH and the sequence numbers it must find.
type searchCase struct {
	name string
	c    imap.SearchCriteria
	want []uint32
}

// wantSearches runs each case's SEARCH in c's selected folder and
// reports those that fail or find other messages.
func wantSearches(t *testing.T, c *imapConn, cases []searchCase) {
	t.Helper()
	for _, tc := range cases {
		d, err := c.Search(&tc.c, nil).Wait()
		if err != nil {
			t.Errorf("SEARCH %s: %v", tc.name, err)
			continue
		}
		if got := d.AllSeqNums(); !slices.Equal(got, tc.want) {
			t.Errorf("SEARCH %s = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func testIMAPStore(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	b.deliver(t, 0, imapTestMsg("st1", "x"), user)
	b.deliver(t, 0, imapTestMsg("st2", "x"), user)
	c := dialIMAP(t, b, 0, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	store := func(set imap.NumSet, op imap.StoreFlagsOp, silent bool, flags ...imap.Flag) []*imapclient.FetchMessageBuffer {
		t.Helper()
		msgs, err := c.Store(set, &imap.StoreFlags{Op: op, Silent: silent, Flags: flags}, nil).Collect()
		if err != nil {
			t.Fatalf("STORE %v %v: %v", op, flags, err)
		}
		return msgs
	}
	msgs := store(imap.SeqSetNum(1, 2), imap.StoreFlagsAdd, false, `\seen`, "$Label1")
	if len(msgs) != 2 {
		t.Fatalf("+FLAGS answered %d FETCHes, want 2", len(msgs))
	}
	for _, m := range msgs {
		if !slices.Contains(m.Flags, imap.FlagSeen) || !slices.Contains(m.Flags, "$Label1") {
			t.Errorf("+FLAGS (\\seen $Label1): message %d has %v (system flags must be canonical)", m.SeqNum, m.Flags)
		}
	}
	msgs = store(imap.SeqSetNum(1), imap.StoreFlagsDel, false, "$label1")
	if len(msgs) != 1 || slices.Contains(msgs[0].Flags, "$Label1") || !slices.Contains(msgs[0].Flags, imap.FlagSeen) {
		t.Errorf("-FLAGS ($label1): %+v", msgs)
	}
	msgs = store(imap.UIDSetNum(2), imap.StoreFlagsSet, false, imap.FlagAnswered)
	if len(msgs) != 1 || !slices.Equal(msgs[0].Flags, []imap.Flag{imap.FlagAnswered}) || msgs[0].UID != 2 {
		t.Errorf("UID STORE FLAGS (\\Answered): %+v", msgs)
	}
	if msgs := store(imap.SeqSetNum(1), imap.StoreFlagsAdd, true, imap.FlagFlagged); len(msgs) != 0 {
		t.Errorf("+FLAGS.SILENT answered %d FETCHes", len(msgs))
	}
	all, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil || !slices.Contains(all[0].Flags, imap.FlagFlagged) {
		t.Errorf("after +FLAGS.SILENT \\Flagged: %+v %v", all, err)
	}
	// A flag in any case is one flag.
	if msgs := store(imap.SeqSetNum(1), imap.StoreFlagsAdd, false, `\FLAGGED`); len(msgs) != 1 ||
		slices.ContainsFunc(msgs[0].Flags, func(f imap.Flag) bool { return f == `\FLAGGED` }) {
		t.Errorf("+FLAGS \\FLAGGED: %+v", msgs)
	}
	if _, err := c.Store(imap.SeqSetNum(5), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect(); err == nil {
		t.Error("STORE of sequence number 5 in a 2-message mailbox succeeded")
	}
}

func testIMAPStoreOtherNode(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	b.deliver(t, 0, imapTestMsg("x1", "x"), user)
	b.deliver(t, 0, imapTestMsg("x2", "x"), user)
	watcher := dialIMAP(t, b, 0, user)
	if _, err := watcher.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	writer := dialIMAP(t, b, 1, user)
	if _, err := writer.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	watcher.ev.drain()
	if err := writer.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	// The STORE is acknowledged; the NOOP that follows on node 0 must see
	// it (read barrier), in an unsolicited FETCH with the new flags.
	if err := watcher.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	// imapclient hands unsolicited FETCHes to the handler on a goroutine
	// of their own: give it a moment.
	select {
	case ev := <-watcher.ev.fetch:
		if ev.seq != 2 || !slices.Contains(ev.flags, imap.FlagFlagged) {
			t.Errorf("unsolicited FETCH %+v, want seq 2 with \\Flagged", ev)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("NOOP on node 0 did not report the STORE made on node 1")
	}
	// Reported once only.
	if err := watcher.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-watcher.ev.fetch:
		t.Errorf("second NOOP repeated a flag change: %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}

// testIMAPStoreExpungedElsewhere: a STORE naming a message that another
// session, on another node, expunged before this session polled ends NO
// [EXPUNGEISSUED], with a FETCH for each message still there and none for
// the vanished one (RFC 2180 section 4.2, RFC 9051 section 7.1): it used
// to answer OK with the message's old flags, as if the change were made.
// A .SILENT STORE still answers OK (RFC 2180 section 4.2), and the EXPUNGE
// comes with the next command that allows it.
func testIMAPStoreExpungedElsewhere(t *testing.T, b imapBackend) {
	a := expungedElsewhere(t, b, "se")
	seqs := func(msgs []*imapclient.FetchMessageBuffer) []uint32 {
		var out []uint32
		for _, m := range msgs {
			out = append(out, m.SeqNum)
		}
		return out
	}
	// A change that would change nothing the session knows of.
	msgs, err := a.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{imap.FlagAnswered}}, nil).Collect()
	if imapCode(err) != "EXPUNGEISSUED" || len(msgs) != 0 {
		t.Errorf("STORE 2 -FLAGS on the expunged message: FETCH %v, %v; want none and NO [EXPUNGEISSUED]", seqs(msgs), err)
	}
	msgs, err = a.Store(imap.SeqSet{{Start: 1, Stop: 3}}, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect()
	if imapCode(err) != "EXPUNGEISSUED" || !slices.Equal(seqs(msgs), []uint32{1, 3}) {
		t.Errorf("STORE 1:3 +FLAGS: FETCH %v, %v; want 1 and 3 and NO [EXPUNGEISSUED]", seqs(msgs), err)
	}
	for _, m := range msgs {
		if !slices.Contains(m.Flags, imap.FlagFlagged) {
			t.Errorf("STORE 1:3 +FLAGS: message %d has %v", m.SeqNum, m.Flags)
		}
	}
	if err := a.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
		t.Errorf("STORE 2 +FLAGS.SILENT on the expunged message: %v, want OK", err)
	}
	wantExpungeAtNoop(t, a, "STORE")
}

func testIMAPCopyMove(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	for i := range 4 {
		b.deliver(t, i%3, imapTestMsg(fmt.Sprintf("cm%d", i), "x"), user)
	}
	c := dialIMAP(t, b, 1, user)
	if err := c.Create("Keep", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	cd, err := c.Copy(imap.SeqSetNum(1, 2), "Keep").Wait()
	if err != nil {
		t.Fatal(err)
	}
	src, _ := cd.SourceUIDs.Nums()
	dst, _ := cd.DestUIDs.Nums()
	if cd.UIDValidity == 0 || !slices.Equal(src, []imap.UID{1, 2}) || !slices.Equal(dst, []imap.UID{1, 2}) {
		t.Errorf("COPYUID %d %v %v", cd.UIDValidity, src, dst)
	}
	_, err = c.Copy(imap.SeqSetNum(1), "Nowhere").Wait()
	wantIMAPCode(t, "COPY to a missing folder", err, imap.ResponseCodeTryCreate)

	// MOVE: COPYUID, then EXPUNGE of the sources.
	md, err := c.Move(imap.UIDSetNum(3, 4), "Keep").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if src, _ := md.SourceUIDs.(imap.UIDSet).Nums(); !slices.Equal(src, []imap.UID{3, 4}) {
		t.Errorf("MOVE COPYUID source %v", md.SourceUIDs)
	}
	if n := c.Mailbox().NumMessages; n != 2 {
		t.Errorf("after MOVE of 2 of 4 the client counts %d messages, want 2 (two EXPUNGEs)", n)
	}
	if _, err := c.Move(imap.SeqSetNum(1), "INBOX").Wait(); err == nil {
		t.Error("MOVE into the selected folder succeeded")
	}

	// The copies, seen through node 2: flags kept, the same bodies.
	c2 := dialIMAP(t, b, 2, user)
	sel, err := c2.Select("Keep", nil).Wait()
	if err != nil || sel.NumMessages != 4 {
		t.Fatalf("SELECT Keep: %+v %v", sel, err)
	}
	msgs, err := c2.Fetch(imap.SeqSetNum(1, 2, 3, 4), &imap.FetchOptions{Flags: true, Envelope: true}).Collect()
	if err != nil || len(msgs) != 4 {
		t.Fatal(err)
	}
	if !slices.Contains(msgs[0].Flags, imap.FlagFlagged) || msgs[3].Envelope.Subject != "cm3" {
		t.Errorf("copies: %v %q", msgs[0].Flags, msgs[3].Envelope.Subject)
	}
	st, err := c2.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || *st.NumMessages != 2 {
		t.Errorf("INBOX after MOVE: %v %v", st, err)
	}
}

func testIMAPExpungeClose(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	for i := range 5 {
		b.deliver(t, 0, imapTestMsg(fmt.Sprintf("e%d", i), "x"), user)
	}
	c := dialIMAP(t, b, 2, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	del := func(set imap.NumSet) {
		t.Helper()
		if err := c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
	del(imap.SeqSetNum(2, 4))
	seqs, err := c.Expunge().Collect()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seqs, []uint32{4, 2}) {
		t.Errorf("EXPUNGE responses %v, want [4 2] (each valid when sent)", seqs)
	}
	// Now UIDs 1 3 5 at seqs 1 2 3. UID EXPUNGE only touches the given UIDs.
	del(imap.SeqSetNum(1, 3))
	seqs, err = c.UIDExpunge(imap.UIDSetNum(5)).Collect()
	if err != nil || !slices.Equal(seqs, []uint32{3}) {
		t.Errorf("UID EXPUNGE 5: %v %v, want [3]", seqs, err)
	}
	// UNSELECT does not expunge; CLOSE does, silently.
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	st, _ := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if *st.NumMessages != 2 {
		t.Errorf("after UNSELECT: %d messages, want 2", *st.NumMessages)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.ev.drain()
	if err := c.UnselectAndExpunge().Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-c.ev.expunge:
		t.Errorf("CLOSE sent EXPUNGE %d", s)
	default:
	}
	st, _ = c.Status("INBOX", &imap.StatusOptions{NumMessages: true, NumDeleted: true}).Wait()
	if *st.NumMessages != 1 || *st.NumDeleted != 0 {
		t.Errorf("after CLOSE: %d messages %d deleted, want 1 0", *st.NumMessages, *st.NumDeleted)
	}
}

// testIMAPExpungeDeferred: a message expunged by another session is not
// announced during FETCH, STORE or SEARCH (RFC 9051 section 7.5.1); its
// sequence number stays valid until a command that allows EXPUNGE.
func testIMAPExpungeDeferred(t *testing.T, b imapBackend) {
	// Once node 0 has applied the expunge, FETCH: sequence numbers must
	// not move.
	a := expungedElsewhere(t, b, "d")
	msgs, err := a.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil && imapCode(err) != "EXPUNGEISSUED" {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[2].UID != 3 {
		t.Fatalf("FETCH 1:* after a foreign expunge: %d messages (last %+v), want still 3", len(msgs), msgs)
	}
	wantExpungeAtNoop(t, a, "FETCH")
	msgs, err = a.Fetch(imap.SeqSetNum(2), &imap.FetchOptions{UID: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].UID != 3 {
		t.Errorf("after EXPUNGE, seq 2 is %+v (%v), want UID 3", msgs, err)
	}
}

// expungedElsewhere delivers three messages (subjects prefix0 to
// prefix2) to a new user and returns a session on node 0 with INBOX
// selected, in which message 2 has been expunged by a session on node 1:
// node 0 has applied the expunge, and the returned session has been told
// nothing of it yet (its events drained).
func expungedElsewhere(t *testing.T, b imapBackend, prefix string) *imapConn {
	t.Helper()
	user := b.newUser(t)
	for i := range 3 {
		b.deliver(t, 0, imapTestMsg(fmt.Sprintf("%s%d", prefix, i), "x"), user)
	}
	a := dialIMAP(t, b, 0, user)
	if _, err := a.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	other := dialIMAP(t, b, 1, user)
	if _, err := other.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := other.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	imapEventually(t, 5*time.Second, "expunge visible on node 0", func() bool {
		st, err := dialStatus(t, b, 0, user)
		return err == nil && st == 2
	})
	a.ev.drain()
	return a
}

// wantExpungeAtNoop fails if a has been told of an expunge, during
// what, a command that must not announce one (RFC 9051 section 7.5.1),
// or if its next NOOP does not announce message 2's, which
// expungedElsewhere made.
func wantExpungeAtNoop(t *testing.T, a *imapConn, what string) {
	t.Helper()
	select {
	case s := <-a.ev.expunge:
		t.Fatalf("EXPUNGE %d sent during %s", s, what)
	default:
	}
	if err := a.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-a.ev.expunge:
		if s != 2 {
			t.Errorf("NOOP: EXPUNGE %d, want 2", s)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("NOOP did not report the foreign expunge")
	}
}

func dialStatus(t *testing.T, b imapBackend, i int, user string) (uint32, error) {
	c := dialIMAP(t, b, i, user)
	defer c.Close()
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		return 0, err
	}
	return *st.NumMessages, nil
}

func testIMAPNoop(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	b.deliver(t, 0, imapTestMsg("n1", "x"), user)
	c := dialIMAP(t, b, 2, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.ev.drain()
	b.deliver(t, 0, imapTestMsg("n2", "x"), user) // acknowledged through node 0
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-c.ev.exists:
		if n != 2 {
			t.Errorf("EXISTS %d, want 2", n)
		}
	default:
		t.Fatal("NOOP on node 2 did not report a delivery acknowledged on node 0")
	}
	msgs, err := c.Fetch(imap.SeqSetNum(2), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].Envelope.Subject != "n2" {
		t.Errorf("FETCH 2: %+v %v", msgs, err)
	}
}

func testIMAPIdle(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	b.deliver(t, 0, imapTestMsg("i1", "x"), user)
	c := dialIMAP(t, b, 2, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	c.ev.drain()
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the server is idling
	start := time.Now()
	b.deliver(t, 0, imapTestMsg("i2", "x"), user)
	acked := time.Since(start)
	select {
	case n := <-c.ev.exists:
		if n != 2 {
			t.Errorf("EXISTS %d, want 2", n)
		}
		t.Logf("IDLE on node 2 saw a delivery through node 0 %v after it began (%v after its acknowledgement)",
			time.Since(start), time.Since(start)-acked)
	case <-time.After(acked + time.Second):
		t.Fatal("IDLE on node 2 did not report a delivery on node 0 within 1 s of its acknowledgement")
	}
	// A flag change by another session shows up too.
	other := dialIMAP(t, b, 1, user)
	if _, err := other.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := other.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagAnswered}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-c.ev.fetch:
		if ev.seq != 1 || !slices.Contains(ev.flags, imap.FlagAnswered) {
			t.Errorf("IDLE FETCH %+v", ev)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("IDLE did not report a flag change made on node 1")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE ... DONE: %v", err)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatalf("NOOP after IDLE: %v", err)
	}
}

func testIMAPNamespace(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	c := dialIMAP(t, b, 0, user)
	ns, err := c.Namespace().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Personal) != 1 || ns.Personal[0].Prefix != "" || ns.Personal[0].Delim != '/' || ns.Other != nil || ns.Shared != nil {
		t.Errorf("NAMESPACE %+v", ns)
	}
}

// testIMAPIsolation: a user can never reach another user's mailbox, by
// any spelling of its name.
func testIMAPIsolation(t *testing.T, b imapBackend) {
	alice, bob := b.newUser(t), b.newUser(t)
	b.deliver(t, 0, imapTestMsg("for bob", "secret"), bob)
	b.deliver(t, 0, imapTestMsg("for alice", "x"), alice)
	c := dialIMAP(t, b, 1, alice)
	names := []string{
		bob, bob + "/INBOX", "../" + bob + "/INBOX", "#shared", "#shared/" + bob, "~" + bob,
		"Other Users/" + bob, "/INBOX", "INBOX/../../" + bob, "user/" + strings.Split(bob, "@")[0],
		strings.ToUpper(bob) + "/INBOX",
	}
	for _, n := range names {
		if _, err := c.Select(n, nil).Wait(); err == nil {
			t.Errorf("alice could SELECT %q", n)
		}
		if _, err := c.Status(n, &imap.StatusOptions{NumMessages: true}).Wait(); err == nil {
			t.Errorf("alice could STATUS %q", n)
		}
		for _, d := range listData(t, c.Client, n, "*", nil) {
			t.Errorf("LIST %q * showed %q", n, d.Mailbox)
		}
	}
	for _, d := range listData(t, c.Client, "", "*"+strings.Split(bob, "@")[0]+"*", nil) {
		t.Errorf("LIST showed %q", d.Mailbox)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if _, err := c.Copy(imap.SeqSetNum(1), n).Wait(); err == nil {
			t.Errorf("alice could COPY into %q", n)
		}
		cmd := c.Append(n, 3, nil)
		cmd.Write([]byte("x\r\n"))
		cmd.Close()
		if _, err := cmd.Wait(); err == nil {
			t.Errorf("alice could APPEND to %q", n)
		}
	}
	// Bob's mailbox is untouched, and he still sees only his message.
	bc := dialIMAP(t, b, 2, bob)
	sel, err := bc.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("bob's INBOX: %+v %v, want his one message", sel, err)
	}
	for _, d := range listData(t, bc.Client, "", "*", nil) {
		if strings.Contains(d.Mailbox, "@") {
			t.Errorf("bob has a folder %q (created through alice?)", d.Mailbox)
		}
	}
}

// testIMAPAppendBesideAVanishedFolder: an APPEND to another folder that
// stores its message gets its tagged OK even when the poll after it finds
// the selected folder gone; the session ends at the next command. Ended
// at once with BYE and no OK, the client would append the message again.
func testIMAPAppendBesideAVanishedFolder(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	c := dialIMAP(t, b, 0, user)
	if err := c.Create("Temp", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("Temp", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	other := dialIMAP(t, b, 1, user)
	if err := other.Delete("Temp").Wait(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the deletion reaches c's node and its watch
	appendMsg(t, c.Client, "INBOX", imapTestMsg("kept", "once"), nil)
	_ = c.Noop().Wait()
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("the session of a deleted folder was not ended at the next command")
	}
	st, err := other.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || st.NumMessages == nil || *st.NumMessages != 1 {
		t.Fatalf("INBOX after the APPEND: %+v, %v; want 1 message", st, err)
	}
}

// testIMAPVanishedFolder: a session whose selected folder is deleted by
// another session is told BYE rather than shown a different folder.
func testIMAPVanishedFolder(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	c := dialIMAP(t, b, 0, user)
	if err := c.Create("Temp", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	appendMsg(t, c.Client, "Temp", imapTestMsg("t", "x"), nil)
	if _, err := c.Select("Temp", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	other := dialIMAP(t, b, 1, user)
	if err := other.Delete("Temp").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := other.Create("Temp", nil).Wait(); err != nil { // same name, new UIDVALIDITY
		t.Fatal(err)
	}
	_ = c.Noop().Wait()
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("the session of a deleted folder was not ended")
	}
}
