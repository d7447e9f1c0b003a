package fsm

import (
	"errors"
	"reflect"
	"testing"
)

// A queue part with DSN parameters keeps them per recipient in the entry
// it creates and travels as EncodingJSON3, never in an older encoding;
// each parameter that does not fit is dropped, the mail kept.
func TestQueueEntryKeepsDSNParameters(t *testing.T) {
	a := deliveryFixture(t)
	h := bodyHash("dsn")
	c := &Deliver{ID: "d-dsn", Hash: h, Size: 3, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"},
		Queue: &QueuePart{From: "s@far.org", Recipients: []string{"x@other.net", "y@other.net"},
			DSN: &QueueDSN{EnvID: "QQ314159", Ret: "HDRS", Notify: []string{"NEVER", "SUCCESS,FAILURE"},
				ORCPT: []string{"rfc822; list@example.com", ""}}}}
	data, err := EncodeAs(c, NewestEncoding)
	if err != nil {
		t.Fatal(err)
	}
	if data[1] != EncodingJSON3 {
		t.Fatalf("a Deliver with DSN parameters was written with encoding %d", data[1])
	}
	for _, enc := range []int{EncodingJSON, EncodingBinary} {
		if _, err := EncodeAs(c, enc); !errors.Is(err, ErrEncoding) {
			t.Fatalf("encoding %d allowed DSN parameters: %v", enc, err)
		}
	}
	if got := newRegistry().decode(1, data); !reflect.DeepEqual(got, c) {
		t.Fatalf("decodes to %+v", got)
	}
	r := a.applyAs(c, NewestEncoding)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	e, err := a.s.QueueGet(r.Value.(DeliverResult).Queued)
	if err != nil {
		t.Fatal(err)
	}
	x, y := e.Recipients[0], e.Recipients[1]
	if e.EnvID != "QQ314159" || e.Ret != "HDRS" || x.Notify != "NEVER" || x.ORCPT != "rfc822; list@example.com" ||
		y.Notify != "SUCCESS,FAILURE" || y.ORCPT != "" {
		t.Fatalf("entry %+v", e)
	}
	if x.Wants(NotifyFailure) || !y.Wants(NotifySuccess) || !y.Wants(NotifyFailure) || y.Wants(NotifyDelay) {
		t.Fatalf("Wants: %+v %+v", x, y)
	}
	if plain := (QueueRecipient{}); !plain.Wants(NotifyFailure) || !plain.Wants(NotifyDelay) || plain.Wants(NotifySuccess) {
		t.Fatal("without NOTIFY, failures and delays are reported and success is not")
	}
	// Each parameter that does not fit is dropped on its own.
	bad := &Deliver{Hash: h, Size: 3, Replicas: []string{"n1", "n2"},
		Queue: &QueuePart{Recipients: []string{"x@other.net", "y@other.net"}, DSN: &QueueDSN{
			EnvID: string(make([]byte, maxEnvID+1)), Ret: "ALL",
			Notify: []string{"SUCCESS,SOMETIMES", "NEVER"}, ORCPT: []string{"rfc822; " + string(make([]byte, maxORCPT)), "rfc822; y@example.com"}}}}
	r = a.applyAs(bad, NewestEncoding)
	if r.Err != nil {
		t.Fatalf("delivery refused for its DSN parameters: %v", r.Err)
	}
	e, err = a.s.QueueGet(r.Value.(DeliverResult).Queued)
	if err != nil {
		t.Fatal(err)
	}
	x, y = e.Recipients[0], e.Recipients[1]
	if e.EnvID != "" || e.Ret != "" || x.Notify != "" || x.ORCPT != "" || y.Notify != "NEVER" || y.ORCPT != "rfc822; y@example.com" {
		t.Fatalf("entry %+v, want only the misfits dropped", e)
	}
	short := &Deliver{Hash: h, Size: 3, Replicas: []string{"n1", "n2"},
		Queue: &QueuePart{Recipients: []string{"x@other.net", "y@other.net"}, DSN: &QueueDSN{EnvID: "E2", Notify: []string{"NEVER"}}}}
	r = a.applyAs(short, NewestEncoding)
	if e, err = a.s.QueueGet(r.Value.(DeliverResult).Queued); err != nil || e.EnvID != "E2" || e.Recipients[0].Notify != "" {
		t.Fatalf("a NOTIFY list of the wrong length: %+v %v", e, err)
	}
}

// A submission's mark reaches its entry and travels as EncodingJSON3;
// relayed mail's entry has none.
func TestQueueEntryKeepsTheSubmissionMark(t *testing.T) {
	a := deliveryFixture(t)
	for _, submitted := range []bool{true, false} {
		c := &Deliver{ID: "d-sub-" + map[bool]string{true: "y", false: "n"}[submitted], Hash: bodyHash("sub"), Size: 3,
			Replicas: []string{"n1", "n2"}, Queue: &QueuePart{From: "a@example.com", Recipients: []string{"x@other.net"}, Submitted: submitted}}
		data, err := EncodeAs(c, NewestEncoding)
		if err != nil {
			t.Fatal(err)
		}
		if submitted != (data[1] == EncodingJSON3) {
			t.Fatalf("submitted %v written with encoding %d", submitted, data[1])
		}
		if got := newRegistry().decode(1, data); !reflect.DeepEqual(got, c) {
			t.Fatalf("decodes to %+v", got)
		}
		r := a.applyAs(c, NewestEncoding)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		e, err := a.s.QueueGet(r.Value.(DeliverResult).Queued)
		if err != nil || e.Submitted != submitted {
			t.Fatalf("entry %+v, %v; want submitted %v", e, err, submitted)
		}
	}
	if _, err := EncodeAs(&Deliver{Hash: bodyHash("sub"), Queue: &QueuePart{Submitted: true}}, EncodingBinary); !errors.Is(err, ErrEncoding) {
		t.Fatalf("binary encoding allowed the mark: %v", err)
	}
}

// FailNotified marks failed recipients only, and travels as
// EncodingJSON3.
func TestQueueUpdateMarksFailuresNotified(t *testing.T) {
	a := deliveryFixture(t)
	c := &Deliver{ID: "d-fn", Hash: bodyHash("fn"), Size: 3, Replicas: []string{"n1", "n2"},
		Queue: &QueuePart{From: "a@example.com", Recipients: []string{"x@other.net", "y@other.net"}}}
	r := a.applyAs(c, NewestEncoding)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	id := r.Value.(DeliverResult).Queued
	a.must(&QueueUpdate{ID: id, Outcomes: []RcptOutcome{{Address: "x@other.net", Outcome: OutcomePerm, Error: "550 no"}}})
	upd := &QueueUpdate{ID: id, FailNotified: []string{"x@other.net", "y@other.net"}}
	if _, err := EncodeAs(upd, EncodingBinary); !errors.Is(err, ErrEncoding) {
		t.Fatalf("encoded below JSON3: %v", err)
	}
	if r := a.applyAs(upd, NewestEncoding); r.Err != nil {
		t.Fatal(r.Err)
	}
	e, err := a.s.QueueGet(id)
	if err != nil || !e.Recipients[0].Notified || e.Recipients[1].Notified {
		t.Fatalf("entry %+v, %v: want x notified, pending y not", e, err)
	}
}
