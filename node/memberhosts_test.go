package node

import (
	"net"
	"testing"
	"time"

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

// Names that do not resolve are left out; IP literals are memberHost's.
func TestResolveMemberHosts(t *testing.T) {
	set := resolveMemberHosts(ctxT(t, 10*time.Second), net.DefaultResolver, []fsm.Member{
		{ID: "a", ClusterAddr: "localhost:7000"},
		{ID: "b", ClusterAddr: "10.1.2.3:7000"},
		{ID: "c", ClusterAddr: "no-such-host.invalid:7000"},
	})
	if _, ok := set["127.0.0.1"]; !ok {
		t.Errorf("localhost not resolved: %v", set)
	}
	if _, ok := set["10.1.2.3"]; ok {
		t.Errorf("an IP literal was put in the set: %v", set)
	}
}
