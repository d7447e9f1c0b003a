package fsm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// replayLog is a random log over every kind of command, with the raft
// indexes it is applied at. It jumps half a de-duplication window now and
// then, so that delivery and copy IDs expire within it.
func replayLog(t *testing.T, rng *rand.Rand, n int) []Entry {
	t.Helper()
	boxes := []string{"a@example.com", "b@example.com", "small@example.com"}
	var bodies []string
	for i := range 60 {
		bodies = append(bodies, fmt.Sprintf("body %d", i))
	}
	var queued []string
	var collects []uint64
	var out []Entry
	index := uint64(100)
	for step := range n {
		index++
		if rng.IntN(150) == 0 {
			index += dedupeWindow / 2
		}
		c := replayCommand(rng, boxes, bodies, queued, collects, step)
		switch c := c.(type) {
		case *Deliver:
			if c.Queue != nil {
				queued = append(queued, queueID(index))
			}
		case *BodyCollect:
			collects = append(collects, index)
		}
		data, err := EncodeAs(c, NewestEncoding)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Entry{Index: index, Data: data})
	}
	return out
}

func replayCommand(rng *rand.Rand, boxes, bodies, queued []string, collects []uint64, step int) Command {
	box := boxes[rng.IntN(len(boxes))]
	body := bodies[rng.IntN(len(bodies))]
	pick := func(list []string) string {
		if len(list) == 0 {
			return "none"
		}
		return list[rng.IntN(len(list))]
	}
	members := []string{"n1", "n2", "n3"}
	replicas := []string{members[rng.IntN(3)], members[rng.IntN(3)]}
	now := int64(rng.IntN(5000)) // proposers' clocks disagree
	switch rng.IntN(24) {
	case 0, 1, 2:
		d := &Deliver{ID: fmt.Sprintf("d%d", rng.IntN(40)), Hash: bodyHash(body), Size: int64(len(body)), Replicas: replicas,
			Mailboxes: []string{box, boxes[rng.IntN(len(boxes))]}, InternalDate: now, Flags: []string{`\Seen`}[:rng.IntN(2)]}
		if rng.IntN(3) == 0 {
			d.Queue = &QueuePart{From: "s@far.org", Recipients: []string{"x@other.net", "y@other.net"}, NextAttempt: now}
		}
		return d
	case 3:
		return &QueueLease{Holder: members[rng.IntN(3)], Now: now, TTL: 1 + int64(rng.IntN(2000)), Limit: 1 + rng.IntN(3)}
	case 4:
		return &QueueUpdate{ID: pick(queued), Holder: members[rng.IntN(3)], NextAttempt: now + int64(rng.IntN(3000)),
			Outcomes: []RcptOutcome{{Address: "x@other.net", Outcome: []string{OutcomeSent, OutcomeTemp, OutcomePerm}[rng.IntN(3)]}}, Attempted: true}
	case 5:
		if rng.IntN(2) == 0 {
			return &QueueRetry{ID: pick(queued), Now: now}
		}
		return &QueueRemove{ID: pick(queued)}
	case 6:
		return &BodyCollect{Hash: bodyHash(body)}
	case 7:
		collect := uint64(0)
		if len(collects) > 0 {
			collect = collects[rng.IntN(len(collects))]
		}
		return &BodyForget{Hash: bodyHash(body), Collect: collect}
	case 8:
		return &BodyPlace{Hash: bodyHash(body), Add: []string{members[rng.IntN(3)]}, Remove: []string{members[rng.IntN(3)]}}
	case 9:
		if rng.IntN(4) == 0 {
			return &MemberRemove{ID: "n3"}
		}
		id := members[rng.IntN(3)]
		return &MemberSet{Member{ID: id, ClusterAddr: id + ":7000"}}
	case 10:
		r := 1 + rng.IntN(3)
		return &SettingsSet{Settings: Settings{Replicas: r, WriteQuorum: 1 + rng.IntN(r), CommandEncoding: NewestEncoding, MaxVoters: 5}}
	case 11:
		return &MaildropLock{Mailbox: box, Holder: members[rng.IntN(3)], Now: now, TTL: 1000, Release: rng.IntN(4) == 0}
	case 12:
		// f\u00e9@ given in either form (the encoding-13 name rules store
		// it in NFC), or f@.
		src := []string{"f@example.com", "f" + nfdE + "@example.com", "f" + nfcE + "@example.com"}[rng.IntN(3)]
		if rng.IntN(2) == 0 {
			return &ForwardRemove{Address: src}
		}
		return &ForwardAdd{Address: src, Targets: []string{box, "out@other.net"}, Replace: rng.IntN(2) == 0, Fallbacks: true}
	case 13:
		c := &Copy{Mailbox: box, From: "INBOX", To: "Trash", UIDs: []UIDRange{{1, uint32(1 + rng.IntN(30))}}, Move: rng.IntN(2) == 0}
		if rng.IntN(2) == 0 {
			c.ID = fmt.Sprintf("c%d", rng.IntN(10))
		}
		return c
	case 14:
		if rng.IntN(3) == 0 { // a removal's mark, set or cleared
			on := rng.IntN(2) == 0
			return &MailboxUpdate{Address: box, Removing: &on}
		}
		return &FolderCreate{Mailbox: box, Name: "F1", Distinct: true}
	default:
		return randomAccessCommand(rng, boxes, bodies, step)
	}
}

// replica applies a log the way one node's raft would, in runs of random
// length.
type replica struct {
	t       *testing.T
	s       *State
	rng     *rand.Rand
	maxRun  int
	next    int
	results map[uint64]string
}

func (r *replica) applyUpTo(log []Entry, end int) {
	for r.next < end {
		n := min(1+r.rng.IntN(r.maxRun), end-r.next)
		run := log[r.next : r.next+n]
		for i, res := range r.s.ApplyBatch(run) {
			if run[i].Index > r.s.Applied() {
				r.t.Fatalf("entry %d not applied", run[i].Index)
			}
			r.results[run[i].Index] = fmt.Sprintf("%+v|%v", res.Value, res.Err)
		}
		r.next += n
	}
}

// TestReplicasApplyAlike applies one random log to three replicas: one
// from the start in long runs, one that is closed and opened again every
// few hundred entries (its caches, the delivery IDs, the body filter and
// the queue's low-water mark, start cold), and one that installs, as
// often, a snapshot the first took further on, then is handed the
// entries from where it was, as raft does after a marker snapshot. Their key spaces
// must be the same byte for byte, and every entry two of them applied
// must have had the same result on both.
func TestReplicasApplyAlike(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var setup []Command
	setup = append(setup, &DomainAdd{Name: "example.com"},
		&MailboxAdd{Mailboxes: []NewMailbox{{Address: "a@example.com"}, {Address: "b@example.com"}, {Address: "small@example.com", QuotaBytes: 100}}, Distinct: true})
	for _, id := range []string{"n1", "n2", "n3"} {
		setup = append(setup, &MemberSet{Member{ID: id, ClusterAddr: id + ":7000"}})
	}
	var log []Entry
	for i, c := range setup {
		data, err := EncodeAs(c, NewestEncoding)
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, Entry{Index: uint64(i + 1), Data: data})
	}
	log = append(log, replayLog(t, rng, 4000)...)

	open := func(dir string) *State {
		s, err := Open(dir, Options{bodyFilterMin: 16})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	mk := func(seed uint64, maxRun int) *replica {
		return &replica{t: t, s: open(t.TempDir()), rng: rand.New(rand.NewPCG(seed, seed)), maxRun: maxRun, results: map[uint64]string{}}
	}
	first, reopened, restored := mk(1, 16), mk(2, 3), mk(3, 5)
	for at := 300; at < len(log); at += 300 + rng.IntN(200) {
		first.applyUpTo(log, min(at+rng.IntN(250), len(log)))
		reopened.applyUpTo(log, at)
		restored.applyUpTo(log, at)
		reopened.s.Close()
		reopened.s = open(reopened.s.dir)
		if err := restored.s.Restore(bytes.NewReader(dump(t, first.s))); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*replica{first, reopened, restored} {
		r.applyUpTo(log, len(log))
	}

	stats := map[string][2]int{}
	for _, e := range log {
		typ := fmt.Sprint(CmdType(e.Data[0]))
		st := stats[typ]
		if res := first.results[e.Index]; bytes.HasSuffix([]byte(res), []byte("|<nil>")) {
			st[0]++
		} else {
			st[1]++
		}
		stats[typ] = st
	}
	t.Logf("type: [ok refused] %v; ids %d in order", stats, len(first.s.ids.order))
	want := dump(t, first.s)
	for name, r := range map[string]*replica{"reopened": reopened, "restored": restored} {
		if got := dump(t, r.s); !bytes.Equal(got, want) {
			t.Errorf("the %s replica's state differs from the first's (%d and %d bytes)", name, len(got), len(want))
		}
		for idx, res := range r.results {
			if idx > first.s.Applied() {
				continue
			}
			if first.results[idx] != res && !(name == "restored" && res == "<nil>|<nil>") {
				t.Errorf("entry %d: the %s replica answered %s, the first %s", idx, name, res, first.results[idx])
			}
		}
	}
}
