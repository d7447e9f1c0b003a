package check

import "testing"

const srsFrom = "SRS0=abcd=7Q=client.test=c@jepsen.test"

func from(s string) mod { return func(o *Op) { o.From = s } }

// fwd records a forward of id to the remote recipients, completed as typ.
func (b *hb) fwd(p int, id string, typ OpType, rcpts ...string) *hb {
	b.inv(p, FForward, "fwd0", msg(id), to(rcpts...))
	return b.op(p, typ, FForward, "fwd0", msg(id), to(rcpts...))
}

// arrive records the remote's receipt of id, completed as typ (Info: the
// acknowledgement was lost).
func (b *hb) arrive(p int, id string, typ OpType, mods ...mod) *hb {
	b.inv(p, FArrive, "")
	mods = append([]mod{msg(id), to("r@remote.test"), from(srsFrom)}, mods...)
	return b.op(p, typ, FArrive, "", mods...)
}

func TestForwardsPassesAcknowledgedArrivals(t *testing.T) {
	b := &hb{}
	b.fwd(1, "m1", OK, "r@remote.test").fwd(1, "m2", Info, "r@remote.test").fwd(1, "m3", Fail, "r@remote.test")
	b.arrive(100, "m1", Fail) // refused by the remote: not an arrival
	b.arrive(101, "m1", OK, to("R@Remote.test"))
	r := CheckForwards(b.h, Options{})
	wantValid(t, r)
	wantCounts(t, r, map[string]int{"acknowledged": 1, "arrived": 1, "refused_by_remote": 1, "indeterminate_unsent": 1})
}

func TestForwardsCatchesLoss(t *testing.T) {
	b := &hb{}
	b.fwd(1, "m1", OK, "r@remote.test", "s@remote.test")
	b.arrive(100, "m1", OK) // only r@ got it
	wantInvalid(t, CheckForwards(b.h, Options{}), map[string]int{CountFwdLost: 1})
}

func TestForwardsCatchesUnexpectedArrivals(t *testing.T) {
	b := &hb{}
	b.arrive(100, "m0", OK) // before any attempt
	b.fwd(1, "m0", OK, "r@remote.test")
	b.fwd(1, "m1", Fail, "r@remote.test").arrive(101, "m1", OK) // a definite failure that arrived
	b.arrive(102, "m9", OK)                                     // never attempted
	wantInvalid(t, CheckForwards(b.h, Options{}), map[string]int{CountFwdUnexpected: 3})
}

func TestForwardsJudgesDuplicates(t *testing.T) {
	b := &hb{}
	b.fwd(1, "m1", OK, "r@remote.test").arrive(100, "m1", OK).arrive(101, "m1", OK)
	wantInvalid(t, CheckForwards(b.h, Options{}), map[string]int{CountFwdDuplicate: 1, "duplicated": 1})

	lostAck := &hb{}
	lostAck.fwd(1, "m1", OK, "r@remote.test").arrive(100, "m1", Info).arrive(101, "m1", OK)
	wantValid(t, CheckForwards(lostAck.h, Options{}))
	wantCounts(t, CheckForwards(lostAck.h, Options{}), map[string]int{"dup_after_lost_ack": 1, "dup_after_fault": 0})

	// A kill of the worker between the two copies, healed after both.
	fault := &hb{}
	fault.fwd(1, "m1", OK, "r@remote.test").arrive(100, "m1", OK)
	fault.inv(-1, "kill", "").ok(-1, "kill", "").arrive(101, "m1", OK).inv(-1, "restart", "").ok(-1, "restart", "")
	wantValid(t, CheckForwards(fault.h, Options{}))
	wantCounts(t, CheckForwards(fault.h, Options{}), map[string]int{"dup_after_lost_ack": 0, "dup_after_fault": 1})

	// A leader change seen between them explains it too; a corruption
	// fault does not.
	lc := &hb{}
	lc.inv(-2, FLeader, "").ok(-2, FLeader, "", onNode("n1"))
	lc.fwd(1, "m1", OK, "r@remote.test").arrive(100, "m1", OK)
	lc.inv(-2, FLeader, "").ok(-2, FLeader, "", onNode("n1")).arrive(101, "m1", OK)
	wantInvalid(t, CheckForwards(lc.h, Options{}), map[string]int{CountFwdDuplicate: 1}) // same leader: no excuse
	lc.inv(-2, FLeader, "").ok(-2, FLeader, "", onNode("n2")).arrive(102, "m1", OK)
	// The change happened between the second poll's start and the third's
	// end, which overlaps both gaps between the copies.
	r := CheckForwards(lc.h, Options{})
	wantValid(t, r)
	wantCounts(t, r, map[string]int{"duplicated": 2})
	corrupt := &hb{}
	corrupt.fwd(1, "m1", OK, "r@remote.test").arrive(100, "m1", OK)
	corrupt.inv(-1, "corrupt", "").ok(-1, "corrupt", "").inv(-1, "repair", "").ok(-1, "repair", "").arrive(101, "m1", OK)
	wantInvalid(t, CheckForwards(corrupt.h, Options{}), map[string]int{CountFwdDuplicate: 1})

	// A fault healed before the first copy arrived explains nothing.
	early := &hb{}
	early.inv(-1, "pause", "").ok(-1, "pause", "").inv(-1, "resume", "").ok(-1, "resume", "")
	early.fwd(1, "m1", OK, "r@remote.test").arrive(100, "m1", OK).arrive(101, "m1", OK)
	wantInvalid(t, CheckForwards(early.h, Options{}), map[string]int{CountFwdDuplicate: 1})
}

func TestForwardsCatchesSenderAndContent(t *testing.T) {
	b := &hb{}
	b.fwd(1, "m1", OK, "r@remote.test").arrive(100, "m1", OK, from("c@client.test"))
	b.fwd(1, "m2", OK, "r@remote.test").arrive(101, "m2", OK, errCode("corrupt: token line missing"))
	wantInvalid(t, CheckForwards(b.h, Options{}), map[string]int{CountFwdNotSRS: 1, CountFwdCorrupt: 1, CountFwdLost: 0})
}

// TestForwardsDuplicateBeforeRetry: two copies reached the remote before a
// second forward with the same Message-ID was invoked; that later attempt
// does not explain the duplicate.
func TestForwardsDuplicateBeforeRetry(t *testing.T) {
	b := &hb{}
	b.fwd(1, "m1", OK, "r@remote.test").arrive(100, "m1", OK).arrive(101, "m1", OK)
	b.fwd(1, "m1", OK, "r@remote.test")
	wantInvalid(t, CheckForwards(b.h, Options{}), map[string]int{CountFwdDuplicate: 1})

	ok := &hb{}
	ok.fwd(1, "m1", OK, "r@remote.test").arrive(100, "m1", OK)
	ok.fwd(1, "m1", OK, "r@remote.test").arrive(101, "m1", OK)
	wantValid(t, CheckForwards(ok.h, Options{}))
}
