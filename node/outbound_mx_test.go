package node

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// mxZone answers queries from a small table: MX records per domain
// (preference and host, "." for a null MX) and IPv4 addresses per host.
// Every other name is an authoritative "no such name".
type mxZone struct {
	mx map[string][]mxRR
	a  map[string][4]byte
}

type mxRR struct {
	pref uint16
	host string
}

func (z mxZone) reply(query []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	name := strings.ToLower(q.Name.String())
	_, hasMX := z.mx[name]
	_, hasA := z.a[name]
	rcode := dnsmessage.RCodeSuccess
	if !hasMX && !hasA {
		rcode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rcode})
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	switch q.Type {
	case dnsmessage.TypeMX:
		for _, rr := range z.mx[name] {
			if b.MXResource(rh, dnsmessage.MXResource{Pref: rr.pref, MX: dnsmessage.MustNewName(rr.host)}) != nil {
				return nil
			}
		}
	case dnsmessage.TypeA:
		if ip, ok := z.a[name]; ok {
			if b.AResource(rh, dnsmessage.AResource{A: ip}) != nil {
				return nil
			}
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// RFC 7505 §3: a null MX ("." as the exchange) is only ever published
// alone. A domain that lists one beside real exchanges is misconfigured,
// and its "." must never become a host to dial: joined with the port it
// reads ":25", which the dialler takes for this very machine, and the
// message would go to our own SMTP listener (which refuses to relay:
// a permanent failure for mail the real exchanges would have taken).
// Exchanges whose names the resolver filtered as malformed leave the
// valid ones usable (net.Resolver.LookupMX returns those with its error).
func TestRouteSkipsANullMXAmongRealOnes(t *testing.T) {
	zone := mxZone{
		mx: map[string][]mxRR{
			"mixed.test.":     {{0, "."}, {10, "mx.mixed.test."}},
			"null.test.":      {{0, "."}},
			"malformed.test.": {{5, "bad!host.malformed.test."}, {10, "mx.malformed.test."}},
		},
		a: map[string][4]byte{"mx.mixed.test.": {127, 0, 0, 1}, "mx.malformed.test.": {127, 0, 0, 1}},
	}
	n := &Node{}
	n.cfg.Queue = QueueConfig{Resolver: udpResolver(t, zone.reply), Port: "2525"}
	ctx := ctxT(t, 10*time.Second)

	for domain, want := range map[string]string{"mixed.test": "mx.mixed.test:2525", "malformed.test": "mx.malformed.test:2525"} {
		rt, err := n.routeFor(ctx, domain)
		if err != nil {
			t.Fatalf("%s: %v", domain, err)
		}
		for _, h := range rt.hosts {
			if host, _, _ := net.SplitHostPort(h); host == "" || host == "." {
				t.Errorf("%s: route %v dials %q, which is this machine", domain, rt.hosts, h)
			}
		}
		if len(rt.hosts) != 1 || rt.hosts[0] != want {
			t.Errorf("%s: route %v, want [%s]", domain, rt.hosts, want)
		}
	}
	if _, err := n.routeFor(ctx, "null.test"); !errors.Is(err, ErrNullMX) {
		t.Errorf("null.test: %v, want %v", err, ErrNullMX)
	}
}
