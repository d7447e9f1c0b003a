package node

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"powermail/fsm"
)

// The cluster port's handshake caps and the admin port's caps do not
// count connections from the members' hosts (mux.member,
// adminPool). A member's cluster address may name its host by
// IP or by name; names are looked up in the background, every
// memberHostsRefresh, so that no accept waits for DNS and an address
// written as a name is trusted as one written as an IP is.

// memberHostsRefresh is how often the members' host names are looked up
// again.
const memberHostsRefresh = 30 * time.Second

// memberHostLookup bounds the lookup of one name.
const memberHostLookup = 5 * time.Second

// ipSet is a set of IP addresses in their string form.
type ipSet map[string]struct{}

// memberHosts holds the addresses the members' host names resolved to at
// the last refresh.
type memberHosts struct {
	named  atomic.Pointer[ipSet]
	mu     sync.Mutex          // held by a refresh
	byName map[string][]string // each name's addresses at the last refresh
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
// addresses, each with its own timeout and several at once, so that one
// name whose servers do not answer holds up no other. A name that does
// not resolve now keeps the addresses it had in prev; IP literals are
// left to memberHost.
func resolveMemberHosts(ctx context.Context, r *net.Resolver, members []fsm.Member, prev map[string][]string) map[string][]string {
	names := map[string]bool{}
	for _, m := range members {
		if host, _, err := net.SplitHostPort(m.ClusterAddr); err == nil && net.ParseIP(host) == nil {
			names[host] = true
		}
	}
	out := make(map[string][]string, len(names))
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, memberLookups)
	for name := range names {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			lctx, cancel := context.WithTimeout(ctx, memberHostLookup)
			defer cancel()
			ips := prev[name]
			if addrs, err := r.LookupIPAddr(lctx, name); err == nil {
				ips = ips[:0:0]
				for _, a := range addrs {
					ips = append(ips, a.IP.String())
				}
			}
			mu.Lock()
			out[name] = ips
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// memberLookups bounds the lookups a refresh runs at once.
const memberLookups = 8

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
	n.memberHosts.mu.Lock() // one refresh at a time: each starts from the last
	defer n.memberHosts.mu.Unlock()
	byName := resolveMemberHosts(ctx, net.DefaultResolver, members, n.memberHosts.byName)
	set := ipSet{}
	for _, ips := range byName {
		for _, ip := range ips {
			set[ip] = struct{}{}
		}
	}
	n.memberHosts.byName = byName
	n.memberHosts.named.Store(&set)
}
