package check

import (
	"sort"
)

// UID checker count names.
const (
	CountUIDValidityChanged = "uidvalidity_changed"
	CountUIDReused          = "uid_reused"
	CountMultipleUIDs       = "msg_multiple_uids"
	CountUIDOrder           = "uid_order"
	CountUIDRegression      = "uid_regression"
)

type mbUID struct {
	mailbox string
	uid     uint32
}

// uidRead is one OK read with its UIDs indexed.
type uidRead struct {
	call   Call
	maxUID uint32
	uids   map[uint32]bool
}

func (r *uidRead) validity() uint32 { return r.call.Complete.UIDValidity }
func (r *uidRead) next() uint32     { return r.call.Complete.UIDNext }

// uidChecker is the working state of one CheckUIDs run.
type uidChecker struct {
	c        *collector
	ds       map[msgKey]*delivery
	validity map[string][]uint32 // mailbox -> distinct UIDVALIDITY values seen
	owner    map[mbUID]string    // (mailbox, UID) -> first message ID seen
	reused   map[mbUID]bool
	uidsOf   map[msgKey]map[uint32]int64 // UID -> earliest completion that showed it
	reads    map[string][]*uidRead       // mailbox -> reads in invocation order
	keysOf   map[string][]msgKey         // mailbox -> messages with a UID, sorted
}

// CheckUIDs checks IMAP identity: UIDVALIDITY never changes, a UID is never
// reused, UIDs strictly ascend in delivery order and never regress as seen
// by successive reads. See the package documentation for the exact rules.
func CheckUIDs(h History, opts Options) Result {
	calls, err := Pair(h)
	if err != nil {
		return malformed(NameUIDs, err)
	}
	u := &uidChecker{
		c: newCollector(NameUIDs, opts, CountUIDValidityChanged, CountUIDReused,
			CountMultipleUIDs, CountUIDOrder, CountUIDRegression, "reads", "uids"),
		ds:       indexDeliveries(calls),
		validity: map[string][]uint32{},
		owner:    map[mbUID]string{},
		reused:   map[mbUID]bool{},
		uidsOf:   map[msgKey]map[uint32]int64{},
		reads:    map[string][]*uidRead{},
	}
	u.collect(calls)
	u.checkMultiple()
	for _, mb := range sortedKeys(u.mailboxes()) {
		u.checkDeliveryOrder(mb)
		u.checkHighWater(mb)
	}
	u.c.add("uids", len(u.owner))
	return u.c.result()
}

func (u *uidChecker) collect(calls []Call) {
	for _, c := range calls {
		if c.Type() != OK {
			continue
		}
		switch c.Invoke.F {
		case FRead:
			u.collectRead(c)
		case FDeliver:
			mbs := c.Invoke.Mailboxes()
			if len(mbs) == 1 && c.Complete.UID != 0 {
				u.seeValidity(mbs[0], c.Complete.UIDValidity, c.Complete.Index)
				u.bind(mbs[0], c.Complete.UID, c.Invoke.MsgID, c.Complete.Index, c.End())
			}
		}
	}
}

func (u *uidChecker) collectRead(c Call) {
	mb := c.Invoke.Key
	op := c.Complete.Index
	u.c.add("reads", 1)
	u.seeValidity(mb, c.Complete.UIDValidity, op)
	r := &uidRead{call: c, uids: map[uint32]bool{}}
	for _, m := range c.Complete.Messages {
		if m.UID == 0 {
			continue
		}
		if r.uids[m.UID] {
			u.c.violation(CountUIDReused, "op %d listed UID %d of %s twice", op, m.UID, mb)
		}
		r.uids[m.UID] = true
		r.maxUID = max(r.maxUID, m.UID)
		u.bind(mb, m.UID, m.MsgID, op, c.End())
	}
	u.reads[mb] = append(u.reads[mb], r)
}

func (u *uidChecker) seeValidity(mb string, v uint32, op int) {
	if v == 0 {
		return
	}
	seen := u.validity[mb]
	for _, old := range seen {
		if old == v {
			return
		}
	}
	if len(seen) > 0 {
		u.c.violation(CountUIDValidityChanged, "op %d: %s has UIDVALIDITY %d, earlier %d", op, mb, v, seen[0])
	}
	u.validity[mb] = append(seen, v)
}

func (u *uidChecker) bind(mb string, uid uint32, msgID string, op int, at int64) {
	k := mbUID{mb, uid}
	if prev, ok := u.owner[k]; !ok {
		u.owner[k] = msgID
	} else if prev != msgID && !u.reused[k] {
		u.reused[k] = true
		u.c.violation(CountUIDReused, "op %d: UID %d of %s names %s, earlier %s", op, uid, mb, msgID, prev)
	}
	mk := msgKey{mb, msgID}
	if u.uidsOf[mk] == nil {
		u.uidsOf[mk] = map[uint32]int64{}
	}
	if t, ok := u.uidsOf[mk][uid]; !ok || at < t {
		u.uidsOf[mk][uid] = at
	}
}

// checkMultiple flags messages with more distinct UIDs than delivery
// attempts; each attempt adds at most one copy. The n-th UID to be seen
// needs n attempts invoked by the time it was seen: a retry made later
// does not explain it.
func (u *uidChecker) checkMultiple() {
	keys := make([]msgKey, 0, len(u.uidsOf))
	for k := range u.uidsOf {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	u.keysOf = map[string][]msgKey{}
	for _, k := range keys {
		u.keysOf[k.mailbox] = append(u.keysOf[k.mailbox], k)
		seen := u.uidsOf[k]
		uids := sortedKeys(seen)
		sort.SliceStable(uids, func(i, j int) bool { return seen[uids[i]] < seen[uids[j]] })
		for n, uid := range uids {
			allowed := 1
			if d := u.ds[k]; d != nil {
				allowed = max(1, d.attemptsBy(seen[uid]))
			}
			if n+1 > allowed {
				u.c.violation(CountMultipleUIDs, "%s has UIDs %v; %d of them seen by %d, after %d delivery attempts",
					k, sortedKeys(seen), n+1, seen[uid], allowed)
				break
			}
		}
	}
}

func (u *uidChecker) mailboxes() map[string]bool {
	mbs := map[string]bool{}
	for mb := range u.keysOf {
		mbs[mb] = true
	}
	for mb := range u.reads {
		mbs[mb] = true
	}
	return mbs
}

func minUID[V any](uids map[uint32]V) uint32 {
	first := true
	var m uint32
	for uid := range uids {
		if first || uid < m {
			m, first = uid, false
		}
	}
	return m
}

func sortedKeys[K interface{ ~string | ~uint32 }, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
