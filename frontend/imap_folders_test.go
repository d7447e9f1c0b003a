package frontend_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"powermail/frontend"
	"powermail/fsm"
	"powermail/node/nodetest"
)

// testIMAPListPatternCost: a LIST pattern with many wildcards is matched
// in time linear in the name for each pattern position, not by trying
// every way the wildcards could split the name (go-imap's MatchList took
// 41 s for "*a" five times then "b" against 200 a's, and grew a
// hundredfold with each further "*a").
func testIMAPListPatternCost(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	c := dialIMAP(t, b, 0, user)
	long := strings.Repeat("a", 200)
	if err := c.Create(long, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	done := make(chan []string, 1)
	go func() {
		var names []string
		l, err := c.List("", strings.Repeat("*a", 8)+"b", nil).Collect()
		if err != nil {
			t.Errorf("LIST: %v", err)
		}
		for _, d := range l {
			names = append(names, d.Mailbox)
		}
		done <- names
	}()
	select {
	case names := <-done:
		if len(names) != 0 {
			t.Errorf("LIST with a pattern that matches nothing: %v", names)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("LIST with eight wildcards against a 200-octet name took over 5 s")
	}
	// The same matcher still matches what it should.
	for pattern, want := range map[string]bool{
		strings.Repeat("*a", 8): true, "a%a": true, "%": true, "a*": true, "*b": false, "a%b": false,
	} {
		if got := slices.Contains(listNames(t, c.Client, "", pattern), long); got != want {
			t.Errorf("LIST \"\" %q lists %s: %v, want %v", pattern, long[:8]+"...", got, want)
		}
	}
}

// TestIMAPRenameInboxKeepsFolderLimit: RENAME INBOX makes a folder (the
// one INBOX's messages move to), so at fsm.MaxFolders it is refused like
// CREATE; else one client could make folders without end, one RENAME
// INBOX at a time. One short of the limit, a CREATE or RENAME whose
// superior names would pass it is refused before it makes any of them.
func TestIMAPRenameInboxKeepsFolderLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("creates ten thousand folders")
	}
	c := nodetest.Start(t, 1)
	addr := startIMAP(t, c.Nodes[0], frontend.IMAPConfig{}, true)
	user := imapNewAddr(t)
	c.AddMailboxes(imapPassword, user)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	have, err := c.Nodes[0].Folders(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent creates share raft commits.
	todo := make(chan int)
	go func() {
		defer close(todo)
		for i := len(have); i < fsm.MaxFolders-1; i++ {
			todo <- i
		}
	}()
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range todo {
				if err := c.Nodes[0].CreateFolder(ctx, user, fmt.Sprintf("f%05d", i), ""); err != nil {
					t.Errorf("create folder %d: %v", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ic := dialIMAP(t, imapSingle(addr), 0, user)
	wantIMAPCode(t, "CREATE with a superior past the folder limit", ic.Create("A/B", nil).Wait(), imap.ResponseCodeCannot)
	wantIMAPCode(t, "RENAME with a superior past the folder limit", ic.Rename("f00100", "A/B/C", nil).Wait(), imap.ResponseCodeCannot)
	if names := listNames(t, ic.Client, "", "A*"); len(names) != 0 {
		t.Fatalf("refused CREATE and RENAME left %q", names)
	}
	if err := ic.Create(fmt.Sprintf("f%05d", fsm.MaxFolders-1), nil).Wait(); err != nil {
		t.Fatalf("CREATE of the last folder allowed: %v", err)
	}
	wantIMAPCode(t, "CREATE past the folder limit", ic.Create("one-more", nil).Wait(), imap.ResponseCodeCannot)
	wantIMAPCode(t, "RENAME INBOX past the folder limit", ic.Rename("INBOX", "Old", nil).Wait(), imap.ResponseCodeCannot)
	if got, err := c.Nodes[0].Folders(ctx, user); err != nil || len(got) > fsm.MaxFolders {
		t.Fatalf("%d folders (%v), at most %d allowed", len(got), err, fsm.MaxFolders)
	}
	// A rename that makes no folder still works at the limit.
	if err := ic.Rename("f09999", "g09999", nil).Wait(); err != nil {
		t.Fatalf("RENAME of an ordinary folder at the limit: %v", err)
	}
}

// testIMAPUnsubscribeMissing: UNSUBSCRIBE answers OK for a name that is
// not subscribed, a folder that does not exist included (RFC 9051
// §6.3.8). Clients unsubscribe a folder right after deleting it, and a
// NO there is shown to the user as a failure.
func testIMAPUnsubscribeMissing(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	c := dialIMAP(t, b, 0, user)
	if err := c.Create("Gone", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("Gone").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe("Gone").Wait(); err != nil {
		t.Errorf("UNSUBSCRIBE of a folder just deleted: %v, want OK", err)
	}
	if err := c.Unsubscribe("Never/There").Wait(); err != nil {
		t.Errorf("UNSUBSCRIBE of a folder that never existed: %v, want OK", err)
	}
	wantIMAPCode(t, "SUBSCRIBE of a missing folder", c.Subscribe("Gone").Wait(), imap.ResponseCodeNonExistent)
	if got := listNames(t, c.Client, "", "Gone"); len(got) != 0 {
		t.Errorf("LIST after UNSUBSCRIBE of a missing folder: %v", got)
	}
}

// testIMAPSelectSendsList: under IMAP4rev2, SELECT and EXAMINE answer
// with a LIST response for the mailbox (RFC 9051 §6.3.2 requires it,
// with accurate attributes: here the special use); an IMAP4rev1 client
// gets none, as RFC 3501 has no such response to SELECT.
func testIMAPSelectSendsList(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	rev1 := dialIMAP(t, b, 0, user)
	d, err := rev1.Select("Sent", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if d.List != nil {
		t.Errorf("SELECT under IMAP4rev1 sent LIST %+v", d.List)
	}
	c := dialIMAP(t, b, 1, user)
	if _, err := c.Enable(imap.CapIMAP4rev2).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, readOnly := range []bool{false, true} {
		d, err := c.Select("Sent", &imap.SelectOptions{ReadOnly: readOnly}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if d.List == nil || d.List.Mailbox != "Sent" || d.List.Delim != '/' || !slices.Contains(d.List.Attrs, imap.MailboxAttrSent) {
			t.Errorf("SELECT Sent (read-only %v) under IMAP4rev2: LIST %+v, want Sent with \\Sent", readOnly, d.List)
		}
	}
	d, err = c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if d.List == nil || d.List.Mailbox != "INBOX" {
		t.Errorf("SELECT INBOX under IMAP4rev2: LIST %+v", d.List)
	}
}

// testIMAPStoreManyFlagsCost: a STORE naming thousands of keywords (a
// command line holds about 8,500) is refused for naming more than a
// message can hold before any per-message work. It cost the list's
// length squared to deduplicate, and for -FLAGS that length times every
// flag of every message in the set to find other spellings: here 33 s
// of CPU for one command, before the store refused it anyway.
func testIMAPStoreManyFlagsCost(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	b.deliver(t, 0, imapTestMsg("many", "x"), user)
	c := dialIMAP(t, b, 0, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	all := imap.SeqSet{}
	all.AddRange(1, 0)
	for range 13 { // 2^13 messages
		if _, err := c.Copy(all, "INBOX").Wait(); err != nil {
			t.Fatal(err)
		}
	}
	var kws, many []imap.Flag
	for i := range 60 {
		kws = append(kws, imap.Flag(fmt.Sprintf("kw%d", i)))
	}
	for i := range 8000 {
		many = append(many, imap.Flag(fmt.Sprintf("k%d", i)))
	}
	if err := c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: kws}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: many}, nil).Close()
	took := time.Since(start)
	wantIMAPCode(t, "STORE -FLAGS of 8000 keywords", err, imap.ResponseCodeCannot)
	if took > 5*time.Second {
		t.Errorf("STORE -FLAGS of 8000 keywords on %d messages took %v", 1<<13, took)
	}
	start = time.Now()
	ac := c.Append("INBOX", 3, &imap.AppendOptions{Flags: many})
	if _, err := ac.Write([]byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := ac.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = ac.Wait()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("APPEND with 8000 keywords took %v", took)
	}
	wantIMAPCode(t, "APPEND with 8000 keywords", err, imap.ResponseCodeCannot)
}

// testIMAPExpungeHalfOfALargeFolder: removing expunged messages from a
// session's snapshot takes one pass, not one shift of the rest of the
// snapshot per message. EXPUNGE of every other message of 131,072 took
// 11 s of CPU under the session's lock, and so did the poll of every
// other session with the folder selected, on every node.
func testIMAPExpungeHalfOfALargeFolder(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	b.deliver(t, 0, imapTestMsg("large", "x"), user)
	c := imapPlainSession(t, b.server(0), user)
	const n = 1 << 17
	doubleInbox(t, c, 17)
	other := imapPlainSession(t, b.server(1), user)
	everyOther(n, func(set imap.SeqSet) {
		untilAvailable(t, "STORE", func() error {
			return c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
		})
	})
	start := time.Now()
	retried := untilAvailable(t, "EXPUNGE", func() error { return c.Expunge().Close() })
	if took := time.Since(start); took > 3*time.Second && !retried {
		t.Errorf("EXPUNGE of %d of %d messages took %v", n/2, n, took)
	}
	start = time.Now()
	if err := other.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("NOOP reporting %d expunged of %d messages took %v", n/2, n, took)
	}
	if d, err := other.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait(); err != nil || *d.NumMessages != n/2 {
		t.Fatalf("STATUS after EXPUNGE: %+v %v, want %d messages", d, err, n/2)
	}
}

// testIMAPStoreOnAScatteredSearchResult: UID STORE $ after SEARCH
// RETURN (SAVE) that matched every other message of 32,768 names more
// separate runs of UIDs than one state-machine command carries
// (fsm.MaxUIDRanges, 10,000); the store is made in several commands, as
// EXPUNGE already is, instead of being refused with NO. Each STORE is
// sent again on NO [UNAVAILABLE], as a client does (untilAvailable):
// under -race a leadership can end during one, and adding a flag again
// leaves what the first did.
func testIMAPStoreOnAScatteredSearchResult(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	b.deliver(t, 0, imapTestMsg("scattered", "x"), user)
	c := imapPlainSession(t, b.server(0), user)
	const n = 1 << 15
	doubleInbox(t, c, 15)
	everyOther(n, func(set imap.SeqSet) {
		untilAvailable(t, "STORE +FLAGS (\\Flagged)", func() error {
			return c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()
		})
	})
	// imapclient cannot send "$": the rest goes as raw lines.
	r := dialIMAPRaw(t, b.server(1), user)
	r.ok("SELECT INBOX")
	if u := r.ok("UID SEARCH RETURN (SAVE) FLAGGED"); len(u) != 0 {
		// SAVE alone returns nothing (RFC 5182 section 2.4), however
		// long the ESEARCH the library writes would be.
		t.Errorf("UID SEARCH RETURN (SAVE): %d untagged lines (%d octets), want none", len(u), len(strings.Join(u, "")))
	}
	// The store is several entries, which under -race on a loaded
	// machine can outlast the 10 s a raw line is waited for by default:
	// wait as long as the server lets the command take.
	r.wait = frontend.DefaultIMAPCommandTimeout + 10*time.Second
	untilAvailable(t, fmt.Sprintf("UID STORE $ on %d scattered messages", n/2), func() error {
		return r.status(`UID STORE $ +FLAGS.SILENT (\Seen)`)
	})
	r.wait = 0
	st, err := c.Status("INBOX", &imap.StatusOptions{NumUnseen: true}).Wait()
	if err != nil || *st.NumUnseen != n/2 {
		t.Fatalf("STATUS after UID STORE $ +FLAGS (\\Seen): %d unseen (%v), want %d", *st.NumUnseen, err, n/2)
	}
}

// status sends a command and returns nil if it is answered OK, else its
// tagged reply as an *imap.Error with the reply's response code, for
// untilAvailable and imapCode.
func (r *imapRaw) status(command string) error {
	r.t.Helper()
	_, tagged := r.cmd(command)
	if strings.HasPrefix(tagged, "OK") {
		return nil
	}
	e := &imap.Error{Type: imap.StatusResponseTypeNo, Text: tagged}
	if strings.HasPrefix(tagged, "BAD") {
		e.Type = imap.StatusResponseTypeBad
	}
	if _, rest, ok := strings.Cut(tagged, "["); ok {
		code, _, _ := strings.Cut(rest, "]")
		code, _, _ = strings.Cut(code, " ")
		e.Code = imap.ResponseCode(code)
	}
	return e
}

// untilAvailable runs cmd again while it fails with NO [UNAVAILABLE], as
// a client does, and reports whether it had to. The test cluster's leader
// lease is 150 ms, which the apply of one huge command on a busy machine
// can outlast: the leadership ends and a command in flight is refused as
// temporarily unavailable. Only for commands whose repeat leaves what the
// doubleInbox copies all of c's selected INBOX into itself times times,
// so that one message becomes 1<<times, and makes c see them all.
func doubleInbox(t *testing.T, c *imapclient.Client, times int) {
	t.Helper()
	all := imap.SeqSet{}
	all.AddRange(1, 0)
	for range times {
		if _, err := c.Copy(all, "INBOX").Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
}

// everyOther calls each with the odd sequence numbers 1 to n, a set of
// at most 6,000 at a time: a command each can send.
func everyOther(n uint32, each func(imap.SeqSet)) {
	for lo := uint32(1); lo <= n; lo += 12000 {
		set := imap.SeqSet{}
		for s := lo; s < lo+12000 && s <= n; s += 2 {
			set.AddNum(s)
		}
		each(set)
	}
}

// first did (STORE +FLAGS, EXPUNGE).
func untilAvailable(t *testing.T, what string, cmd func() error) bool {
	t.Helper()
	for try := 0; ; try++ {
		err := cmd()
		if err == nil {
			return try > 0
		}
		if imapCode(err) != imap.ResponseCodeUnavailable || try == 5 {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %v; again", what, err)
		time.Sleep(500 * time.Millisecond)
	}
}

// testIMAPCreateMakesSuperiors: CREATE of a nested name creates the
// superior names it needs (RFC 9051 section 6.3.4, RFC 3501 section
// 6.3.3: SHOULD), as clients that create "Archives/2024" in one command
// expect. Without them the parents were listed only as \NonExistent
// \Noselect, so the user saw folders that could not be opened, renamed
// or deleted. The special use goes to the named folder only, and
// existing superiors, INBOX among them, are left alone.
func testIMAPCreateMakesSuperiors(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	c := dialIMAP(t, b, 0, user)
	other := dialIMAP(t, b, 1, user)
	if err := c.Create("A/B/C", &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttrArchive}}).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Entw\u00fcrfe/Sub/", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("INBOX/Sub", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	l := listData(t, other.Client, "", "*", nil)
	for _, name := range []string{"A", "A/B", "A/B/C", "Entw\u00fcrfe", "Entw\u00fcrfe/Sub", "INBOX/Sub"} {
		d, ok := l[name]
		if !ok {
			t.Errorf("LIST \"\" * on another node: %q missing", name)
			continue
		}
		if slices.Contains(d.Attrs, imap.MailboxAttrNonExistent) || slices.Contains(d.Attrs, imap.MailboxAttrNoSelect) {
			t.Errorf("%q listed as %v, want a folder that exists", name, d.Attrs)
		}
		if use := slices.Contains(d.Attrs, imap.MailboxAttrArchive); use != (name == "A/B/C") {
			t.Errorf("%q listed as %v: \\Archive only on A/B/C", name, d.Attrs)
		}
	}
	if _, err := other.Select("A/B", nil).Wait(); err != nil {
		t.Errorf("SELECT of a superior name CREATE made: %v", err)
	}
	if err := other.Unselect().Wait(); err != nil { // a rename elsewhere would end the session
		t.Fatal(err)
	}
	wantIMAPCode(t, "CREATE of an existing nested folder", c.Create("A/B/C", nil).Wait(), imap.ResponseCodeAlreadyExists)
	if err := c.Rename("A", "Z", nil).Wait(); err != nil {
		t.Fatalf("RENAME of a superior name CREATE made: %v", err)
	}
	if names := listNames(t, other.Client, "", "Z*"); !slices.Equal(names, []string{"Z", "Z/B", "Z/B/C"}) {
		t.Errorf("after RENAME A Z: %v", names)
	}
	// RENAME has the same SHOULD (RFC 9051 section 6.3.6); one that
	// fails creates nothing.
	if err := c.Rename("Z/B", "New/Deep/B", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	wantIMAPCode(t, "RENAME of a missing folder", c.Rename("Nope", "Other/Nope", nil).Wait(), imap.ResponseCodeNonExistent)
	l = listData(t, other.Client, "", "*", nil)
	for _, name := range []string{"New", "New/Deep", "New/Deep/B", "New/Deep/B/C", "Z"} {
		if d, ok := l[name]; !ok || slices.Contains(d.Attrs, imap.MailboxAttrNonExistent) {
			t.Errorf("after RENAME Z/B New/Deep/B: %q missing from %v", name, slices.Sorted(maps.Keys(l)))
		}
	}
	for _, name := range []string{"Other", "Z/B"} {
		if _, ok := l[name]; ok {
			t.Errorf("%q listed", name)
		}
	}
}

// testIMAPRefusedCreateMakesNoSuperiors: a CREATE or RENAME whose name
// the store refuses (a wildcard, RFC 9051 section 5.1; a name too long)
// creates none of its superior names either: it fails and changes
// nothing.
func testIMAPRefusedCreateMakesNoSuperiors(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	c := dialIMAP(t, b, 0, user)
	if err := c.Create("Source", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	long := "Long/" + strings.Repeat("x", 600)
	for _, name := range []string{"Wild/Card*", "Pct/Card%", long} {
		if err := c.Create(name, nil).Wait(); err == nil {
			t.Errorf("CREATE %.20q taken", name)
		}
		if err := c.Rename("Source", "R"+name, nil).Wait(); err == nil {
			t.Errorf("RENAME Source %.20q taken", "R"+name)
		}
	}
	names := listNames(t, c.Client, "", "*")
	for _, superior := range []string{"Wild", "Pct", "Long", "RWild", "RPct", "RLong"} {
		if slices.Contains(names, superior) {
			t.Errorf("after refused CREATEs and RENAMEs: %q listed", superior)
		}
	}
}
