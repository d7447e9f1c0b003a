package fsm

import (
	"errors"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Resolution is where mail for one address goes.
type Resolution struct {
	// Mailboxes are the local mailboxes (canonical addresses) to deliver to.
	Mailboxes []string `json:"mailboxes"`
	// External are addresses outside the hosted domains, reached through
	// forwards.
	External []string `json:"external,omitempty"`
	// OverQuota are the Mailboxes that have used up their quota, so RCPT
	// can refuse without reading the records again.
	OverQuota []string `json:"over_quota,omitempty"`
	// Removing are the Mailboxes marked as being removed
	// (Mailbox.Removing): Deliver refuses them, so RCPT refuses them
	// first, for a while.
	Removing []string `json:"removing,omitempty"`
	// Own is the address's own mailbox among Mailboxes (found under its
	// spelling, its NFC or its sub-address base; kept beside a forward
	// with keep_copy), "" when the mail reaches only a forward's targets.
	// RCPT gates on it as on a single mailbox, and lets a list's members
	// pass one another (node).
	Own string `json:"own,omitempty"`
}

type resolution struct {
	Resolution
	// lookup is what the resolutions of one lookup share: the lookup
	// of an address and those of the forwards below it (forwardTargets).
	*lookup
	// track makes the expansion record every address key it passes in
	// reaches (forward loop checks); delivery lookups leave it off.
	track bool
	// lookups makes a tracking expansion record every key it looks up,
	// also those where it finds nothing (ForwardAdd.Fallbacks).
	lookups bool
	reaches map[string]struct{}
	// listed is what the result's lists hold already, by list and
	// address, so that adding one is a map lookup: checked by scanning
	// the list, a lookup reaching 10,000 mailboxes through 100 lists of
	// 100 took 210 ms (BenchmarkResolveFanOut).
	listed map[listed]struct{}
	// unindexed are lists taken whole from an expansion (addAll), not
	// yet in listed.
	unindexed []*[]string
	// deepest is the deepest level an expansion entered so far in the
	// subtree being expanded (see expand).
	deepest int
	// nfc looks the address asked for up in NFC too when nothing is
	// stored under its own spelling (a lookup from command encoding 13,
	// State.Resolve): new names are stored in NFC (localpart.go), and a
	// client may send another form. Forward targets are looked up as
	// stored, as apply's expansions are.
	nfc bool
}

// lookup is the part of a lookup its resolutions share.
type lookup struct {
	// top is the address asked for, which a depth error names: the
	// same error whichever path, fresh or reused, met the limit first.
	top Address
	// hosted remembers which target domains are hosted: a list of 100
	// members names one domain 100 times, and its key read was a third
	// of a large lookup.
	hosted map[string]bool
	// done remembers, for a delivery lookup, each address already
	// expanded: a forward graph with shared members (lists of lists)
	// reaches one address on many paths, and expanding it again on each
	// made a lookup's work grow with the number of paths, exponential in
	// the depth: 6 levels of 6 lists, each naming the 6 of the next,
	// took 47,000 expansions for one RCPT, and 8 of 8 would take a core
	// for minutes for any sender who names the top address.
	done map[string]expanded
	// memo keeps the expansion of the forward a delivery lookup landed
	// on, for the transaction's later lookups, which take it wherever
	// they meet that forward (ExpansionMemo). Loop checks, which stop
	// at a reached key, use none.
	memo memoUse
	// reads counts exact lookups, for tests and for the transaction's
	// count (ExpansionMemo.Reads).
	reads int
}

// expanded is what expanding an address once gave: its error (nil or
// a not-found), how many levels below it the expansion went, and where
// it landed, which a resolution other than the one that expanded it
// (in) adds to its lists when the address is met again.
type expanded struct {
	height int
	err    error
	landing
	in *resolution
}

// landing is where an address's lookup landed: a forward's expansion
// (nil if none) and then a mailbox (if hasBox; kept beside a forward
// with keep_copy).
type landing struct {
	fwd    *memoEntry
	box    boxFound
	hasBox bool
}

// boxFound is a mailbox a lookup landed on.
type boxFound struct {
	addr      string
	overQuota bool
	removing  bool
}

// listed names an entry of one of a result's lists.
type listed struct {
	list *[]string
	addr string
}

func (res *resolution) reached(key string) bool {
	_, ok := res.reaches[key]
	return ok
}

// listScan is the length up to which a list is checked by a scan: most
// lookups list one mailbox, and a set for it cost allocations.
const listScan = 16

// add appends addr to list, a list of res.Resolution, unless it holds
// it already; the lists keep the order addresses were first met in.
func (res *resolution) add(list *[]string, addr string) {
	if len(*list) < listScan {
		if !slices.Contains(*list, addr) {
			*list = append(*list, addr)
		}
		return
	}
	if res.unindexed != nil {
		res.indexTaken()
	}
	if res.listed == nil {
		res.listed = map[listed]struct{}{}
	}
	if len(*list) == listScan {
		if _, indexed := res.listed[listed{list, (*list)[0]}]; !indexed {
			res.index(list)
		}
	}
	k := listed{list, addr}
	if _, dup := res.listed[k]; dup {
		return
	}
	res.listed[k] = struct{}{}
	*list = append(*list, addr)
}

func (res *resolution) index(list *[]string) {
	if res.listed == nil {
		res.listed = map[listed]struct{}{}
	}
	for _, x := range *list {
		res.listed[listed{list, x}] = struct{}{}
	}
}

// indexTaken indexes the lists taken whole (addAll) before one grows.
func (res *resolution) indexTaken() {
	for _, list := range res.unindexed {
		res.index(list)
	}
	res.unindexed = nil
}

// addAll adds each of addrs, in order, to list. Into an empty list it
// takes them whole, a copy of a slice: a lookup that lands on a list
// kept in the memo adds its 10,000 mailboxes so, and indexes them only
// if another address is added after.
func (res *resolution) addAll(list *[]string, addrs []string) {
	if len(*list) > 0 || len(addrs) == 0 {
		for _, a := range addrs {
			res.add(list, a)
		}
		return
	}
	*list = slices.Clone(addrs)
	if len(addrs) >= listScan {
		res.unindexed = append(res.unindexed, list)
	}
}

// adopt adds what an expansion made elsewhere added: a forward's
// expansion, then a mailbox.
func (res *resolution) adopt(l landing) {
	if e := l.fwd; e != nil {
		res.addAll(&res.Mailboxes, e.lists.Mailboxes)
		res.addAll(&res.External, e.lists.External)
		res.addAll(&res.OverQuota, e.lists.OverQuota)
		res.addAll(&res.Removing, e.lists.Removing)
	}
	if l.hasBox {
		res.addBox(l.box)
	}
}

func (res *resolution) addBox(b boxFound) {
	res.add(&res.Mailboxes, b.addr)
	if b.overQuota {
		res.add(&res.OverQuota, b.addr)
	}
	if b.removing {
		res.add(&res.Removing, b.addr)
	}
}

// resolve expands a in a hosted domain: exact forward, exact mailbox,
// sub-address base (RFC 5233), then the domain's catch-all.
func resolve(r pebble.Reader, a Address, track bool) (*resolution, error) {
	return (&resolution{track: track}).run(r, a)
}

// resolveTracking is resolve for a forward's loop check. With lookups the
// reached keys include every address looked up on the way, found or not:
// a forward made at any of them would be taken there.
func resolveTracking(r pebble.Reader, a Address, lookups bool) (*resolution, error) {
	return (&resolution{track: true, lookups: lookups}).run(r, a)
}

// run expands a. A delivery lookup without a transaction's memo gets
// its own.
func (res *resolution) run(r pebble.Reader, a Address) (*resolution, error) {
	if res.lookup == nil {
		res.lookup = &lookup{}
	}
	res.top = a
	if !res.track && res.memo.m == nil {
		res.memo.m = NewExpansionMemo()
	}
	if err := res.expand(r, a, 0); err != nil {
		return nil, err
	}
	return res, nil
}

func (res *resolution) pass(a Address) {
	if res.track {
		if res.reaches == nil {
			res.reaches = map[string]struct{}{}
		}
		res.reaches[a.Key()] = struct{}{}
	}
}

// tooDeep is the error of a lookup that would follow forwards past
// maxForwardDepth, on whichever path it met the limit first.
func (res *resolution) tooDeep() error {
	return errorf(ErrForwardLoop, "forwarding of %s is nested more than %d deep", res.top, maxForwardDepth)
}

// expand expands a at depth. A delivery lookup expands each address
// once: expanding it again gives what the first time gave (the state
// does not change under a lookup), except that a second path that
// reaches it deeper passes the depth limit if the first time's height
// would, which answers as the first rule did. A resolution other than
// the one that expanded it (a forward's, forwardTargets) adds what it
// landed on.
func (res *resolution) expand(r pebble.Reader, a Address, depth int) error {
	if res.track {
		return res.expandOnce(r, a, depth, nil) // loop checks stop at a reached key
	}
	key := a.Key()
	if e, ok := res.done[key]; ok {
		if depth+e.height > maxForwardDepth {
			return res.tooDeep()
		}
		res.deepest = max(res.deepest, depth+e.height)
		if e.in != res {
			res.adopt(e.landing)
		}
		return e.err
	}
	outer := res.deepest
	res.deepest = depth
	var got landing
	err := res.expandOnce(r, a, depth, &got)
	if err == nil || errors.Is(err, ErrNotFound) {
		if res.done == nil {
			res.done = map[string]expanded{}
		}
		res.done[key] = expanded{height: res.deepest - depth, err: err, landing: got, in: res}
	}
	res.deepest = max(outer, res.deepest)
	return err
}

func (res *resolution) expandOnce(r pebble.Reader, a Address, depth int, got *landing) error {
	if depth > maxForwardDepth {
		return res.tooDeep()
	}
	if res.track && res.reached(a.Key()) {
		return nil
	}
	found, err := res.expandSpelled(r, a, depth, got)
	if err != nil || found {
		return err
	}
	if base := subaddressBase(a.Local); base != "" {
		found, err = res.expandSpelled(r, Address{Local: base, Domain: a.Domain}, depth, got)
		if err != nil || found {
			return err
		}
	}
	found, err = res.expandExact(r, Address{Domain: a.Domain}, depth, got)
	if err != nil {
		return err
	}
	if !found {
		return errorf(ErrNotFound, "no mailbox %s", a)
	}
	return nil
}

// expandSpelled follows what is stored under a's spelling, and, for the
// address asked for in a lookup with nfc, then under its NFC: a name
// stored before command encoding 13 in another form is still found by
// its own bytes first, and before the sub-address base and catch-all.
func (res *resolution) expandSpelled(r pebble.Reader, a Address, depth int, got *landing) (bool, error) {
	found, err := res.expandExact(r, a, depth, got)
	if err != nil || found || !res.nfc || depth != 0 {
		return found, err
	}
	n, nerr := nfcAddress(a)
	if nerr != nil || n == a {
		return false, nil
	}
	return res.expandExact(r, n, depth, got)
}

// expandExact follows the forward or mailbox stored under exactly a. A
// forward shadows the mailbox of the same address unless it keeps a
// copy. What it lands on goes to got (nil in a loop check).
func (res *resolution) expandExact(r pebble.Reader, a Address, depth int, got *landing) (bool, error) {
	res.reads++
	if res.lookups {
		res.pass(a)
	}
	var mb Mailbox
	hasMailbox := false
	if a.Local != "" {
		var err error
		if hasMailbox, err = getJSON(r, mailboxKey(a), &mb); err != nil {
			return false, err
		}
	}
	if !hasMailbox || mb.HasForward {
		var fw Forward
		ok, err := getJSON(r, forwardKey(a), &fw)
		if err != nil {
			return false, err
		}
		if ok {
			res.pass(a)
			e, err := res.forwardTargets(r, a, fw, depth)
			if err != nil {
				return false, err
			}
			if got != nil {
				got.fwd = e
			}
			if !fw.KeepCopy {
				return true, nil
			}
		}
		if !hasMailbox {
			return ok, nil
		}
	}
	res.pass(a)
	b := boxFound{addr: mb.Address, overQuota: mb.QuotaBytes > 0 && mb.UsedBytes >= mb.QuotaBytes, removing: mb.Removing}
	res.addBox(b)
	if depth == 0 {
		res.Own = mb.Address
	}
	if got != nil {
		got.box, got.hasBox = b, true
	}
	return true, nil
}

// forwardTargets expands the targets of the forward fw stored at a,
// reached at depth. A delivery lookup takes a forward's expansion kept
// in the memo (ExpansionMemo) when there is one. Else the forward the
// lookup lands on (depth 0) is expanded in a resolution of its own,
// whose lists are then the forward's expansion whatever the lookup met
// before, which res and any later lookup add to theirs; a forward below
// it is expanded in res, each address once (expand), and not kept: a
// resolution of its own for each would copy and merge its targets'
// lists, once per forward that names them, and lists of lists that
// share lists made that grow tenfold per level
// (TestExpansionOfSharedListsStaysLinear). A kept expansion that,
// reused here, would go past the depth limit is the error a fresh one
// gives: the limit is met on the same levels (tooDeep names the address
// asked for). A loop check expands the targets in res (no memo).
func (res *resolution) forwardTargets(r pebble.Reader, a Address, fw Forward, depth int) (*memoEntry, error) {
	if res.memo.m == nil {
		return nil, res.targets(r, a, fw, depth+1)
	}
	key := a.Key()
	e, ok := res.memo.get(key)
	if !ok && depth > 0 {
		return nil, res.targets(r, a, fw, depth+1)
	}
	if !ok {
		sub := &resolution{lookup: res.lookup, deepest: depth}
		err := sub.targets(r, a, fw, depth+1)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		e = &memoEntry{lists: sub.Resolution, height: sub.deepest - depth, gone: err != nil}
		res.memo.put(key, e)
	} else if depth+e.height > maxForwardDepth {
		return nil, res.tooDeep()
	}
	res.deepest = max(res.deepest, depth+e.height)
	if e.gone {
		return nil, errorf(ErrNotFound, "forward %s: none of its targets exists any more", a)
	}
	res.adopt(landing{fwd: e})
	return e, nil
}

// targets expands a forward's targets. A local target that no longer
// exists (its mailbox was removed after the forward was made) is left
// out, as a mailing list drops a member who left: the others still get
// the mail. Only a forward none of whose targets remain is itself
// unknown, unless it keeps a copy in its own mailbox.
func (res *resolution) targets(r pebble.Reader, a Address, fw Forward, depth int) error {
	left := 0
	for _, t := range fw.Targets {
		err := res.target(r, t, depth)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		left++
	}
	if left == 0 && len(fw.Targets) > 0 && !fw.KeepCopy {
		return errorf(ErrNotFound, "forward %s: none of its targets exists any more", a)
	}
	return nil
}

func (res *resolution) target(r pebble.Reader, t string, depth int) error {
	a, err := ParseAddress(t)
	if err != nil {
		return err
	}
	local, err := res.isHosted(r, a.Domain)
	if err != nil {
		return err
	}
	if local {
		err := res.expand(r, a, depth)
		if errors.Is(err, ErrNotFound) {
			// Skipped at delivery, but a forward made at this address
			// later would be reached through here: loop checks count it.
			res.pass(a)
		}
		return err
	}
	res.add(&res.External, a.String())
	return nil
}

// isHosted reports whether domain is one of the hosted domains, read
// once per lookup (the state does not change under one).
func (res *resolution) isHosted(r pebble.Reader, domain string) (bool, error) {
	if local, ok := res.hosted[domain]; ok {
		return local, nil
	}
	local, err := hasKey(r, domainKey(domain))
	if err != nil {
		return false, err
	}
	if res.hosted == nil {
		res.hosted = map[string]bool{}
	}
	res.hosted[domain] = local
	return local, nil
}

func hasKey(r pebble.Reader, key []byte) (bool, error) {
	_, closer, err := r.Get(key)
	if err == pebble.ErrNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	closer.Close()
	return true, nil
}
