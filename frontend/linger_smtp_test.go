package frontend

import (
	"bufio"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestSMTPEndlessLineEndsWithoutReset: go-smtp answers a command line
// over its limit with 500 5.4.0 and closes, with the client's octets
// unread, so the client got a reset behind the reply, which some
// stacks answer by dropping the reply unread. The close now lingers:
// the client reads the 500 and then the orderly end, over implicit TLS
// too.
func TestSMTPEndlessLineEndsWithoutReset(t *testing.T) {
	_, plain, implicit, pool := startTLSServers(t, newFakeDeliverer())
	const want = "500 5.4.0 Too long line, closing connection\r\n"
	for _, c := range []struct {
		name string
		addr string
		tls  bool
	}{{"plain", plain, false}, {"implicit TLS", implicit, true}} {
		for i := range lingerAttempts {
			conn, r := dialGreeted(t, c.addr, c.tls, pool)
			fmt.Fprintf(conn, "EHLO client.test\r\n")
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("EHLO: %v", err)
				}
				if strings.HasPrefix(l, "250 ") {
					break
				}
			}
			t.Run(fmt.Sprintf("%s %d", c.name, i), func(t *testing.T) {
				EndlessEndsCleanly(t, conn, r, "MAIL FROM:<", "500", want)
			})
		}
	}
}

// lingerAttempts is how many times each endless line is sent: the reset
// came every time, and so must the orderly end that replaces it.
const lingerAttempts = 5

// dialGreeted connects to addr (over TLS trusting roots with overTLS)
// and reads the 220 greeting.
func dialGreeted(t *testing.T, addr string, overTLS bool, roots *x509.CertPool) (net.Conn, *bufio.Reader) {
	t.Helper()
	if !overTLS {
		roots = nil
	}
	return DialGreeting(t, addr, roots, "mx.test", "220 ")
}
