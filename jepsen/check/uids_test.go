package check

import "testing"

func TestUIDsValid(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK).deliver(0, "a", "m2", OK)
	// Concurrent deliveries may get UIDs in either order.
	b.inv(1, FDeliver, "a", msg("m4")).inv(2, FDeliver, "a", msg("m3"))
	b.ok(1, FDeliver, "a", assigned(3)).ok(2, FDeliver, "a", assigned(4))
	b.read(3, "a", validity(1), uidNext(5), messages(m(1, "m1"), m(2, "m2"), m(3, "m4"), m(4, "m3")))
	// m5 times out and is retried: two copies, two UIDs, both allowed.
	b.deliver(0, "a", "m5", Info).deliver(0, "a", "m5", OK)
	b.inv(0, FExpunge, "a", msg("m1")).ok(0, FExpunge, "a")
	// A leader change later: UIDs keep ascending, m1's UID is not reused.
	b.deliver(1, "a", "m6", OK)
	b.read(4, "a", validity(1), uidNext(9), onNode("n3"),
		messages(m(2, "m2"), m(3, "m4"), m(4, "m3"), m(5, "m5"), m(6, "m5"), m(8, "m6")))
	// POP3 reads carry no UIDs and are ignored.
	b.read(5, "a", ids("m2", "m4"))
	r := CheckUIDs(b.h, Options{})
	wantValid(t, r)
	wantCounts(t, r, map[string]int{"reads": 3, "uids": 7})
}

func TestUIDValidityChange(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK)
	b.read(1, "a", validity(1), messages(m(1, "m1")))
	b.read(2, "a", validity(2), messages(m(1, "m1")))
	b.read(2, "a", validity(1), messages(m(1, "m1")))
	wantInvalid(t, CheckUIDs(b.h, Options{}), map[string]int{CountUIDValidityChanged: 1})
}

func TestUIDReuse(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK)
	b.read(1, "a", validity(1), messages(m(1, "m1")))
	b.inv(0, FExpunge, "a", msg("m1")).ok(0, FExpunge, "a")
	b.deliver(0, "a", "m2", OK)
	b.read(1, "a", validity(1), messages(m(1, "m2"))) // UID 1 again
	wantInvalid(t, CheckUIDs(b.h, Options{}), map[string]int{CountUIDReused: 1})
}

func TestUIDListedTwiceInOneRead(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", Info).deliver(0, "a", "m1", OK)
	b.read(1, "a", validity(1), messages(m(1, "m1"), m(1, "m1")))
	wantInvalid(t, CheckUIDs(b.h, Options{}), map[string]int{CountUIDReused: 1})
}

func TestUIDMessageRenumbered(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK)
	b.read(1, "a", validity(1), messages(m(1, "m1")))
	b.read(2, "a", validity(1), messages(m(2, "m1")))
	wantInvalid(t, CheckUIDs(b.h, Options{}), map[string]int{CountMultipleUIDs: 1})
}

func TestUIDOrderRegression(t *testing.T) {
	// A new leader starts from a stale UIDNEXT: m3, delivered after m2 was
	// acknowledged, gets a lower UID.
	b := &hb{}
	b.deliver(0, "a", "m1", OK, assigned(1)).deliver(0, "a", "m2", OK, assigned(5))
	b.deliver(1, "a", "m3", OK, assigned(4))
	r := CheckUIDs(b.h, Options{})
	wantInvalid(t, r, map[string]int{CountUIDOrder: 1, CountUIDReused: 0})
}

func TestUIDHighWaterRegression(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK).deliver(1, "a", "m2", Info)
	b.read(2, "a", validity(1), messages(m(1, "m1"), m(5, "m2")))
	// m3's delivery overlapped everything, but it shows up below UID 5,
	// which an earlier, completed read had already seen.
	b.inv(3, FDeliver, "a", msg("m3"))
	b.read(2, "a", validity(1), messages(m(1, "m1"), m(3, "m3"), m(5, "m2")))
	wantInvalid(t, CheckUIDs(b.h, Options{}), map[string]int{CountUIDRegression: 1, CountUIDOrder: 0})
}

func TestUIDNextRegression(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK)
	b.read(1, "a", validity(1), uidNext(7), messages(m(6, "m1")))
	b.read(2, "a", validity(1), uidNext(6), messages(m(6, "m1")))  // UIDNEXT went down
	b.read(2, "a", validity(1), uidNext(12), messages(m(6, "m1"))) // fine again
	wantInvalid(t, CheckUIDs(b.h, Options{}), map[string]int{CountUIDRegression: 2})
}

func TestUIDConcurrentReadsMayDiffer(t *testing.T) {
	// Two overlapping reads around a delivery: one sees it, one does not.
	b := &hb{}
	b.deliver(0, "a", "m1", OK)
	b.inv(1, FRead, "a").inv(0, FDeliver, "a", msg("m2")).inv(2, FRead, "a")
	b.ok(2, FRead, "a", validity(1), uidNext(3), messages(m(1, "m1"), m(2, "m2")))
	b.ok(0, FDeliver, "a")
	b.ok(1, FRead, "a", validity(1), uidNext(2), messages(m(1, "m1")))
	wantValid(t, CheckUIDs(b.h, Options{}))
}

// TestUIDHighWaterNotHighestRead: the read that proves the regression is
// not the earlier read with the highest UID. Reads 1 and 2 overlap; read 1
// saw UID 5 without UID 3, so UID 3 was assigned after UID 5, and read 3,
// which began after both ended, shows it. Read 2 (highest UID 7) already
// listed UID 3, so comparing read 3 with read 2 alone hides it.
func TestUIDHighWaterNotHighestRead(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK).deliver(0, "a", "m5", Info).deliver(0, "a", "m7", Info)
	b.inv(5, FDeliver, "a", msg("m3"))
	b.inv(1, FRead, "a").inv(2, FRead, "a")
	b.ok(1, FRead, "a", validity(1), messages(m(1, "m1"), m(5, "m5")))
	b.ok(2, FRead, "a", validity(1), messages(m(1, "m1"), m(3, "m3"), m(5, "m5"), m(7, "m7")))
	b.read(3, "a", validity(1), messages(m(1, "m1"), m(3, "m3"), m(5, "m5"), m(7, "m7")))
	wantInvalid(t, CheckUIDs(b.h, Options{}), map[string]int{CountUIDRegression: 1, CountUIDOrder: 0})

	// The same listings with UID 3 expunged in between are fine.
	ok := &hb{}
	ok.deliver(0, "a", "m1", OK).deliver(0, "a", "m3", OK).deliver(0, "a", "m5", OK).deliver(0, "a", "m7", OK)
	ok.inv(1, FRead, "a").inv(2, FRead, "a")
	ok.ok(2, FRead, "a", validity(1), messages(m(1, "m1"), m(2, "m3"), m(5, "m5"), m(7, "m7")))
	ok.inv(0, FExpunge, "a", msg("m3")).ok(0, FExpunge, "a")
	ok.ok(1, FRead, "a", validity(1), messages(m(1, "m1"), m(5, "m5")))
	ok.read(3, "a", validity(1), messages(m(1, "m1"), m(5, "m5"), m(7, "m7")))
	wantValid(t, CheckUIDs(ok.h, Options{}))
}

// TestUIDsBeforeRetry: a read shows a second UID for a message before the
// retry with the same Message-ID was invoked; the retry cannot explain it.
func TestUIDsBeforeRetry(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK)
	b.read(1, "a", validity(1), messages(m(1, "m1"), m(2, "m1")))
	b.deliver(0, "a", "m1", OK)
	b.read(1, "a", validity(1), messages(m(1, "m1"), m(2, "m1")))
	wantInvalid(t, CheckUIDs(b.h, Options{}), map[string]int{CountMultipleUIDs: 1})

	ok := &hb{}
	ok.deliver(0, "a", "m1", Info).deliver(0, "a", "m1", OK)
	ok.read(1, "a", validity(1), messages(m(1, "m1"), m(2, "m1")))
	wantValid(t, CheckUIDs(ok.h, Options{}))
}
