package fsm

import (
	"errors"
	"strings"
	"testing"
)

// From command encoding 15 a queue part may name another host's address
// whose local part is past 64 octets: a notice goes back to the SRS
// address of a long sender, wrapped again by every forwarder a message
// passed, and was refused at commit, so the notice was lost. Below 15
// it is refused as before, so that every replica applies alike. An
// address past 254 octets, or of no dot-atom, is refused either way.
func TestQueueTakesALongRemoteLocalPartFromEncoding15(t *testing.T) {
	a := deliveryFixture(t)
	h := bodyHash("notice")
	deliver := func(id, rcpt string) Result {
		return a.apply(&Deliver{ID: id, Hash: h, Size: 9, Replicas: []string{"n1", "n2"},
			Queue: &QueuePart{Recipients: []string{rcpt}, NextAttempt: 1000}})
	}
	rcpt := "SRS0=abcdefgh=JU=b.test=SRS0=ijklmnop=JU=far.test=bounces+12345-678=example.net@a.test"
	if local := rcpt[:strings.LastIndexByte(rcpt, '@')]; len(local) <= 64 {
		t.Fatalf("a local part of %d octets proves nothing", len(local))
	}
	a.raiseTo(EncodingJSON14)
	if r := deliver("d1", rcpt); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("below 15: %v, want refused", r.Err)
	}
	a.raiseTo(EncodingJSON15)
	r := deliver("d2", rcpt)
	if r.Err != nil {
		t.Fatalf("from 15: %v", r.Err)
	}
	e, err := a.s.QueueGet(r.Value.(DeliverResult).Queued)
	if err != nil || len(e.Recipients) != 1 || e.Recipients[0].Address != rcpt {
		t.Fatalf("entry %+v, %v", e, err)
	}
	for i, bad := range []string{strings.Repeat("l", 250) + "@a.test", "a b@a.test", "x..y@a.test"} {
		if r := deliver("bad"+string(rune('0'+i)), bad); !errors.Is(r.Err, ErrInvalid) {
			t.Errorf("%q: %v, want refused", bad, r.Err)
		}
	}
}
