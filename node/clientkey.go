package node

import (
	"net"
	"strconv"
)

// ClientPrefixV6 is how many leading bits of an IPv6 address name one
// client for per-client limits: a subscriber, a host or a VM is commonly
// given a whole /64, so counting single IPv6 addresses would let one
// client take a limit's share as often as it has addresses (2^64
// times). IPv4 addresses are counted one by one.
const ClientPrefixV6 = 64

// ClientKey is the key per-client limits count ip under: an IPv4
// address (also one written IPv4-mapped) itself, an IPv6 address its
// /64 ("2001:db8:1:2::/64").
func ClientKey(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	if len(ip) != net.IPv6len {
		return ip.String()
	}
	prefix := ip.Mask(net.CIDRMask(ClientPrefixV6, 8*net.IPv6len))
	return prefix.String() + "/" + strconv.Itoa(ClientPrefixV6)
}

// ClientKeyOf is ClientKey for an address written as text (an IP, as
// connections report them); text that is no IP is its own key.
func ClientKeyOf(s string) string {
	if ip := net.ParseIP(s); ip != nil {
		return ClientKey(ip)
	}
	return s
}
