package node

import (
	"net"
	"strconv"
)

// ClientPrefixV6 is how many leading bits of an IPv6 address name one
// client for per-client limits. A host, a subscriber or a VM is often
// given a whole /64, so counting single IPv6 addresses would let one
// client take a limit's share once per address; counting a whole /64
// would put every host of an office LAN (one /64) in one share. /84 is
// the compromise mail servers use (Postfix's default for its client
// limits since 3.8): a client's /64 spreads over 2^20 shares, not 2^64,
// and the random interface IDs of a LAN's hosts rarely share one.
const ClientPrefixV6 = 84

// nat64 is the NAT64 well-known prefix (RFC 6052 §2.1), under which a
// translator presents IPv4 clients as IPv6 ones, each IPv4 address in
// the last 32 bits (§2.2).
var nat64 = net.IPNet{IP: net.ParseIP("64:ff9b::"), Mask: net.CIDRMask(96, 128)}

// ClientKey is the key per-client limits count ip under: an IPv4
// address (also one written IPv4-mapped, or translated under the
// NAT64 well-known prefix) itself, an IPv6 address its /84
// ("2001:db8:1:2::/84").
func ClientKey(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	if len(ip) != net.IPv6len {
		return ip.String()
	}
	if nat64.Contains(ip) {
		return net.IP(ip[12:16]).String()
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
