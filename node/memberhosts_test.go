package node

import (
	"net"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"powermail/fsm"
)

// A member whose cluster address names its host is trusted from the
// addresses the name resolves to, as one written as an IP is; before,
// only IP literals were.
func TestMemberHostNamedByName(t *testing.T) {
	c := newTestClusterWith(t, 1, func(cfg *Config) { cfg.ClusterAddr, cfg.AdminAddr = "127.0.0.5:0", "127.0.0.5:0" })
	n := c.leader(5 * time.Second)
	from := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 40000}
	ctx := ctxT(t, 10*time.Second)
	n.lookUpMemberHosts(ctx)
	if n.memberHost(from) {
		t.Fatal("127.0.0.1 counts as a member's host before any member names it")
	}
	mustApply(t, n, &fsm.MemberSet{Member: fsm.Member{ID: "named", ClusterAddr: "localhost:7946", AdminAddr: "localhost:8946"}})
	n.lookUpMemberHosts(ctx)
	if !n.memberHost(from) {
		t.Fatal("a member at localhost:7946 does not make 127.0.0.1 a member's host")
	}
	if n.memberHost(&net.TCPAddr{IP: net.ParseIP("127.0.0.66")}) {
		t.Fatal("127.0.0.66 counts as a member's host")
	}
}

// Names are looked up each on its own: one whose servers never answer
// leaves the others resolved, and a name that fails keeps the addresses
// it had; IP literals are memberHost's.
func TestResolveMemberHosts(t *testing.T) {
	r := fakeResolver(t, map[string]string{"fast.test.": "192.0.2.10"}) // slow.test. never answers
	members := []fsm.Member{
		{ID: "a", ClusterAddr: "slow.test:7000"},
		{ID: "b", ClusterAddr: "fast.test:7000"},
		{ID: "c", ClusterAddr: "10.1.2.3:7000"},
	}
	prev := map[string][]string{"slow.test": {"192.0.2.20"}}
	start := time.Now()
	got := resolveMemberHosts(ctxT(t, 30*time.Second), r, members, prev)
	if len(got["fast.test"]) != 1 || got["fast.test"][0] != "192.0.2.10" {
		t.Errorf("fast.test behind a silent name: %v", got)
	}
	if len(got["slow.test"]) != 1 || got["slow.test"][0] != "192.0.2.20" {
		t.Errorf("a silent name lost the addresses it had: %v", got)
	}
	if _, ok := got["10.1.2.3"]; ok || len(got) != 2 {
		t.Errorf("an IP literal was looked up: %v", got)
	}
	if el := time.Since(start); el > memberHostLookup+2*time.Second {
		t.Errorf("the refresh took %v", el)
	}
}

// fakeResolver answers A queries for the names in answers and never
// answers any other.
func fakeResolver(t *testing.T, answers map[string]string) *net.Resolver {
	return udpResolver(t, func(q []byte) []byte { return dnsAnswer(q, answers) })
}

// dnsAnswer is the reply to query: an A record from answers, an empty
// answer for other types of a known name, nil (silence) otherwise.
func dnsAnswer(query []byte, answers map[string]string) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	ip, ok := answers[q.Name.String()]
	if !ok {
		return nil
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if q.Type == dnsmessage.TypeA {
		var a [4]byte
		copy(a[:], net.ParseIP(ip).To4())
		b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: a})
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}
