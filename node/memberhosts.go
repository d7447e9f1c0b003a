package node

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"powermail/fsm"
)

// The cluster port's handshake caps and the admin port's caps do not
// count connections from the members' hosts (mux.member,
// trustedAdminPeer). A member's cluster address may name its host by
// IP or by name; names are looked up in the background, every
// memberHostsRefresh, so that no accept waits for DNS and an address
// written as a name is trusted as one written as an IP is.

// memberHostsRefresh is how often the members' host names are looked up
// again.
const memberHostsRefresh = 30 * time.Second

// memberHostLookup bounds one refresh's lookups.
const memberHostLookup = 5 * time.Second

// ipSet is a set of IP addresses in their string form.
type ipSet map[string]struct{}

// memberHosts holds the addresses the members' host names resolved to at
// the last refresh.
type memberHosts struct {
	named atomic.Pointer[ipSet]
}

// memberHost reports whether addr's IP is the host of a member's cluster
// address: one written as an IP (as the directory lists it now) or one
// written as a name (as it resolved at the last refresh).
func (n *Node) memberHost(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	if set := n.memberHosts.named.Load(); set != nil {
		if _, ok := (*set)[ta.IP.String()]; ok {
			return true
		}
	}
	members, err := n.state.Members()
	if err != nil {
		return false
	}
	for _, m := range members {
		if host, _, err := net.SplitHostPort(m.ClusterAddr); err == nil {
			if ip := net.ParseIP(host); ip != nil && ip.Equal(ta.IP) {
				return true
			}
		}
	}
	return false
}

// resolveMemberHosts looks up the host names of members' cluster
// addresses; IP literals are left to memberHost. A name that does not
// resolve now is left out until a later refresh.
func resolveMemberHosts(ctx context.Context, r *net.Resolver, members []fsm.Member) ipSet {
	set := ipSet{}
	for _, m := range members {
		host, _, err := net.SplitHostPort(m.ClusterAddr)
		if err != nil || net.ParseIP(host) != nil {
			continue
		}
		addrs, err := r.LookupIPAddr(ctx, host)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			set[a.IP.String()] = struct{}{}
		}
	}
	return set
}

// refreshMemberHosts keeps memberHosts current until ctx ends.
func (n *Node) refreshMemberHosts(ctx context.Context) {
	n.lookUpMemberHosts(ctx)
	every(ctx, memberHostsRefresh, func() { n.lookUpMemberHosts(ctx) })
}

// lookUpMemberHosts refreshes memberHosts once.
func (n *Node) lookUpMemberHosts(ctx context.Context) {
	members, err := n.state.Members()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, memberHostLookup)
	defer cancel()
	set := resolveMemberHosts(ctx, net.DefaultResolver, members)
	n.memberHosts.named.Store(&set)
}
