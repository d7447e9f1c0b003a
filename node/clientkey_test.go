package node

import (
	"net"
	"testing"
)

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":                 "192.0.2.7",
		"::ffff:192.0.2.7":          "192.0.2.7",
		"64:ff9b::192.0.2.7":        "192.0.2.7",
		"64:ff9b::198.51.100.9":     "198.51.100.9",
		"2001:db8:1:2::1":           "2001:db8:1:2::/84",
		"2001:db8:1:2:0:fff::3":     "2001:db8:1:2::/84",
		"2001:db8:1:2:fff::3":       "2001:db8:1:2:fff::/84",
		"2001:db8:1:3::1":           "2001:db8:1:3::/84",
		"::1":                       "::/84",
		"fe80::1234:5678:9abc:def0": "fe80::1234:5000:0:0/84",
	} {
		if got := ClientKey(net.ParseIP(in)); got != want {
			t.Errorf("ClientKey(%s) = %q, want %q", in, got, want)
		}
	}
	if got := ClientKeyOf("not-an-ip"); got != "not-an-ip" {
		t.Errorf("ClientKeyOf of a non-IP = %q", got)
	}
}
