package check

import "testing"

// finalReads reads mb once through each of the three nodes.
func finalReads(b *hb, mb string, idList ...string) {
	for p := 10; p < 13; p++ {
		b.read(p, mb, final(), ids(idList...))
	}
}

func TestSetFullValid(t *testing.T) {
	b := &hb{}
	// Concurrent, overlapping deliveries; a read overlapping them may or
	// may not see them.
	b.inv(0, FDeliver, "a", msg("m1")).inv(1, FDeliver, "a", msg("m2"))
	b.inv(2, FRead, "a")
	b.ok(0, FDeliver, "a").ok(2, FRead, "a", ids("m2")).ok(1, FDeliver, "a")
	b.read(2, "a", ids("m1", "m2"))
	// Info that took effect, Info that did not, a definite failure.
	b.deliver(3, "a", "m3", Info)
	b.deliver(4, "a", "m4", Info)
	b.deliver(5, "a", "m5", Fail)
	// A timed-out delivery retried: two copies are allowed.
	b.deliver(6, "a", "m6", Info).deliver(6, "a", "m6", OK)
	// One delivery to two mailboxes, then an acknowledged deletion.
	b.inv(7, FDeliver, "", msg("m7"), to("a", "b")).ok(7, FDeliver, "")
	b.inv(7, FPopDele, "b", msg("m7")).ok(7, FPopDele, "b")
	b.read(8, "b", ids())
	// A pending (never completed) delivery that the final reads do not see.
	b.inv(9, FDeliver, "b", msg("m9"))
	finalReads(b, "a", "m1", "m2", "m3", "m6", "m6", "m7")
	finalReads(b, "b")
	r := CheckSetFull(b.h, Options{})
	wantValid(t, r)
	wantCounts(t, r, map[string]int{"attempted": 9, "failed": 1, "acknowledged": 5, "indeterminate": 3,
		"ok": 4, CountRecovered: 1, "deleted": 1, "final_reads": 6, "reads": 9})
}

func TestSetFullLostWrite(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK).deliver(1, "a", "m2", OK)
	b.read(10, "a", final(), ids("m1", "m2"))
	b.read(11, "a", final(), onNode("n2"), ids("m1"))
	r := CheckSetFull(b.h, Options{})
	wantInvalid(t, r, map[string]int{CountLost: 1, CountStale: 0, "ok": 1})
}

func TestSetFullStaleRead(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK)
	b.read(1, "a", ids()) // began after m1 was acknowledged
	finalReads(b, "a", "m1")
	wantInvalid(t, CheckSetFull(b.h, Options{}), map[string]int{CountStale: 1, CountLost: 0})
}

func TestSetFullConcurrentReadMayMiss(t *testing.T) {
	b := &hb{}
	b.inv(1, FRead, "a").deliver(0, "a", "m1", OK).ok(1, FRead, "a", ids())
	finalReads(b, "a", "m1")
	wantValid(t, CheckSetFull(b.h, Options{}))
}

func TestSetFullObservedThenMissing(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", Info)
	b.read(1, "a", ids("m1"))
	b.read(2, "a", ids()) // m1 was visible before this read began
	finalReads(b, "a")    // and then vanished for good
	wantInvalid(t, CheckSetFull(b.h, Options{}), map[string]int{CountStale: 1, CountLost: 1})
}

func TestSetFullDuplicate(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK)
	finalReads(b, "a", "m1", "m1")
	wantInvalid(t, CheckSetFull(b.h, Options{}), map[string]int{CountDuplicated: 1})
}

func TestSetFullUnexpected(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "failed", Fail)
	b.read(1, "a", ids("ghost", "failed"))
	b.read(2, "a", ids("early")) // listed before its delivery began
	b.deliver(0, "a", "early", OK)
	finalReads(b, "a", "early")
	wantInvalid(t, CheckSetFull(b.h, Options{}), map[string]int{CountUnexpected: 3})
}

func TestSetFullDeletion(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK).deliver(0, "a", "m2", OK)
	b.inv(1, FPopDele, "a", msg("m1"))
	b.read(2, "a", ids("m1", "m2")) // concurrent with the deletion: fine
	b.ok(1, FPopDele, "a")
	b.inv(1, FExpunge, "a", msg("m2")).info(1, FExpunge, "a")
	finalReads(b, "a", "m2") // the Info expunge did not take effect: fine
	wantValid(t, CheckSetFull(b.h, Options{}))

	b.read(3, "a", ids("m1", "m2")) // m1 was deleted before this began
	wantInvalid(t, CheckSetFull(b.h, Options{}), map[string]int{CountStale: 1, CountLost: 0})
}

func TestSetFullNeverRead(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK)
	b.read(1, "a", ids("m1")) // not final
	wantInvalid(t, CheckSetFull(b.h, Options{}), map[string]int{CountNeverRead: 1})
}

func TestSetFullPopRetrObservation(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", Info)
	b.inv(1, FPopRetr, "a").ok(1, FPopRetr, "a", msg("m1"))
	b.read(2, "a", final(), ids())
	wantInvalid(t, CheckSetFull(b.h, Options{}), map[string]int{CountLost: 1})
}

func TestSetFullErrorsCapped(t *testing.T) {
	b := &hb{}
	for i := range 5 {
		b.deliver(0, "a", string(rune('a'+i)), OK)
	}
	b.read(1, "a", final(), ids())
	r := CheckSetFull(b.h, Options{MaxErrors: 2})
	wantInvalid(t, r, map[string]int{CountLost: 5})
	if len(r.Errors) != 3 || r.Errors[2] != "... and 3 more" {
		t.Fatalf("errors not capped: %q", r.Errors)
	}
}

// TestSetFullPOP3DeleteReappears: a message whose DELE was committed by a
// successful QUIT shows up again in a later POP3 listing (UIDL) and in a
// final read. Both listings began after the QUIT was acknowledged.
func TestSetFullPOP3DeleteReappears(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK).deliver(0, "a", "m2", OK)
	// Session 1: lists both, deletes m1; the QUIT succeeds.
	b.read(1, "a", validity(7), messages(m(1, "m1"), m(2, "m2")))
	b.inv(2, FPopDele, "a", msg("m1")).ok(2, FPopDele, "a", msg("m1"))
	b.read(1, "a", validity(7), messages(m(2, "m2"))) // fine
	finalReads(b, "a", "m2")
	wantValid(t, CheckSetFull(b.h, Options{}))

	// Session 2, later: m1 is back.
	b.read(1, "a", validity(7), messages(m(1, "m1"), m(2, "m2")))
	wantInvalid(t, CheckSetFull(b.h, Options{}), map[string]int{CountStale: 1, CountLost: 0})
}

// TestSetFullPOP3DeleteUnknown: a QUIT whose outcome is unknown (info)
// may or may not have removed the message: both later listings are fine,
// and the message is not lost when it is gone.
func TestSetFullPOP3DeleteUnknown(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK)
	b.inv(2, FPopDele, "a", msg("m1")).info(2, FPopDele, "a", msg("m1"))
	b.read(1, "a", ids("m1"))
	finalReads(b, "a")
	wantValid(t, CheckSetFull(b.h, Options{}))
}

// TestSetFullCorruptFetch: a single-body read (here through the node
// whose replica was damaged) that returns a body that is not what was
// sent is recorded as corrupt:<hash>, which no delivery produced.
func TestSetFullCorruptFetch(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK)
	b.inv(1, FFetch, "a").ok(1, FFetch, "a", msg("m1"))
	finalReads(b, "a", "m1")
	wantValid(t, CheckSetFull(b.h, Options{}))
	b.inv(1, FFetch, "a").ok(1, FFetch, "a", msg("corrupt:abc123"))
	wantInvalid(t, CheckSetFull(b.h, Options{}), map[string]int{CountUnexpected: 1})
}

// TestSetFullDeletedReappearsAfterLostAck: the POP3 workload deletes what
// its session listed, so the message was seen before its DELE. Its only
// delivery timed out (info), but once its copy was seen that attempt
// cannot add another: after the acknowledged QUIT it must stay gone.
func TestSetFullDeletedReappearsAfterLostAck(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", Info)
	b.read(1, "a", ids("m1"))
	b.inv(2, FPopDele, "a", msg("m1")).ok(2, FPopDele, "a", msg("m1"))
	finalReads(b, "a")
	wantValid(t, CheckSetFull(b.h, Options{}))

	b.read(3, "a", ids("m1")) // began after the deletion was acknowledged
	wantInvalid(t, CheckSetFull(b.h, Options{}), map[string]int{CountStale: 1, CountLost: 0})

	// Seen only by a listing that overlapped the deletion: the timed-out
	// attempt may have stored its copy after the deletion ran.
	late := &hb{}
	late.deliver(0, "a", "m1", Info)
	late.inv(1, FRead, "a").inv(2, FPopDele, "a", msg("m1")).ok(1, FRead, "a", ids("m1")).ok(2, FPopDele, "a")
	late.read(3, "a", ids("m1"))
	finalReads(late, "a", "m1")
	wantValid(t, CheckSetFull(late.h, Options{}))
}

// TestSetFullCorruptNotLost: a corrupt body read once is unexpected, but
// the final reads, which list the intact message, lose nothing: "lost"
// would send whoever reads the summary after a data loss that did not
// happen.
func TestSetFullCorruptNotLost(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK)
	b.inv(1, FFetch, "a").ok(1, FFetch, "a", msg("corrupt:abc123"))
	b.read(2, "a", ids("m1"))
	finalReads(b, "a", "m1")
	wantInvalid(t, CheckSetFull(b.h, Options{}), map[string]int{CountUnexpected: 1, CountLost: 0, CountStale: 0})
}

// TestSetFullDuplicateBeforeRetry: two copies listed before the second
// attempt with the same Message-ID was even invoked; the later retry does
// not explain them.
func TestSetFullDuplicateBeforeRetry(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK)
	b.read(1, "a", ids("m1", "m1"))
	b.deliver(0, "a", "m1", OK)
	finalReads(b, "a", "m1", "m1") // two attempts by now: fine
	wantInvalid(t, CheckSetFull(b.h, Options{}), map[string]int{CountDuplicated: 1})
}
