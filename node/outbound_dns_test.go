package node

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

// fakeDNS answers every query over UDP on loopback: SERVFAIL for names
// under servfail.test, an authoritative "no such name" (NXDOMAIN) for
// all others. It is the wire protocol Go's resolver speaks, by hand.
func fakeDNS(t testing.TB) *net.Resolver { return udpResolver(t, dnsReply) }

// udpResolver is a resolver whose server, on loopback, answers each
// query with reply's answer to it (nil: no answer at all).
func udpResolver(t testing.TB, reply func(query []byte) []byte) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if r := reply(buf[:n]); r != nil {
				pc.WriteTo(r, from)
			}
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

// dnsReply is the answer to one query (RFC 1035 §4.1): its ID and
// question, no records, and the rcode its name calls for.
func dnsReply(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	end := i + 1 + 4 // the root label, QTYPE, QCLASS
	if end > len(q) {
		return nil
	}
	rcode := byte(3) // NXDOMAIN
	if strings.HasSuffix(strings.ToLower(strings.Join(labels, ".")), "servfail.test") {
		rcode = 2
	}
	r := append([]byte{}, q[:end]...)
	r[2] = 0x80 | 0x04 | q[2]&0x01 // QR, AA, RD as asked
	r[3] = 0x80 | rcode            // RA
	r[4], r[5] = 0, 1              // one question
	for j := 6; j < 12; j++ {
		r[j] = 0 // no answer, authority or additional records
	}
	return r
}

// A forward to a domain that does not exist fails at once with 5.1.2,
// and the sender gets its DSN without waiting out the queue lifetime; a
// domain whose DNS fails stays queued, since a retry may succeed.
func TestQueueBouncesANonexistentDomainAtOnce(t *testing.T) {
	s := newSink(t)
	c := queueCluster(t, s, func(q *QueueConfig) { q.Resolver = fakeDNS(t) })
	l := c.leader(time.Second)
	mustApply(t, l, &fsm.ForwardAdd{Address: "typo@example.com", Targets: []string{"x@no-such-domain.test"}})
	mustApply(t, l, &fsm.ForwardAdd{Address: "flaky@example.com", Targets: []string{"x@dns.servfail.test"}})
	sendVia(t, c.follower(), "a@example.com", fwdBody, "typo@example.com")
	dsn := onlyDSN(t, c, l)
	wantAll(t, dsn, "Final-Recipient: rfc822; x@no-such-domain.test", "Action: failed", "Status: 5.1.2")

	sendVia(t, c.follower(), "b@example.com", fwdBody, "flaky@example.com")
	waitFor(t, 10*time.Second, "a failed attempt", func() bool {
		entries, err := l.State().QueueList("", 10)
		return err == nil && len(entries) == 1 && entries[0].Attempts >= 2
	})
	if got := inbox(t, l, "b@example.com"); len(got) != 0 {
		t.Fatalf("a DNS failure bounced: b@example.com holds %d messages", len(got))
	}
}

// Names the resolver would not really ask about (Go answers "no such
// name" for them without a query) are never taken as nonexistent.
func TestASCIIDomains(t *testing.T) {
	for in, want := range map[string]bool{"example.com": true, "mx-1.Example.COM.": true, "bücher.de": false, "": false, "a b.com": false} {
		if got := asciiDomain(in); got != want {
			t.Errorf("asciiDomain(%q) = %v, want %v", in, got, want)
		}
	}
}
