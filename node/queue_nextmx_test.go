package node

import (
	"net"
	"testing"
	"time"

	"powermail/fsm"
)

// RFC 5321 §5.1: a connection to the first MX host lost before the
// server took responsibility for anything (here at DATA) sends the
// message to the next host in the same attempt. It did so only with a
// first host offering SMTPUTF8: without it, the empty outcome list of the
// SMTPUTF8 plan read as "some recipients have outcomes", and the
// recipients were deferred to the next attempt (an hour here).
func TestQueueConnectionLostAtDataTriesTheNextMX(t *testing.T) {
	s := newSink(t)
	_, port, _ := net.SplitHostPort(s.addr)
	serveDropAtData(t, net.JoinHostPort("127.0.0.2", port), 100, false) // no SMTPUTF8
	zone := mxZone{
		mx: map[string][]mxRR{"two.test.": {{10, "mx1.two.test."}, {20, "mx2.two.test."}}},
		a:  map[string][4]byte{"mx1.two.test.": {127, 0, 0, 2}, "mx2.two.test.": {127, 0, 0, 1}},
	}
	c := queueCluster(t, s, func(q *QueueConfig) {
		q.Resolver, q.Port = udpResolver(t, zone.reply), port
		q.RetryMin, q.RetryMax = time.Hour, 2*time.Hour
	})
	l := c.leader(time.Second)
	mustApply(t, l, &fsm.ForwardAdd{Address: "totwo@example.com", Targets: []string{"p@two.test"}})
	sendVia(t, c.follower(), "a@example.com", fwdBody, "totwo@example.com")
	waitFor(t, 15*time.Second, "the second MX host took the message", func() bool { return len(s.messages()) == 1 })
}
