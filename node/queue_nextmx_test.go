package node

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

// RFC 5321 §5.1: a connection to the first MX host lost before the
// server took responsibility for anything (here at DATA) sends the
// message to the next host in the same attempt. It did so only with a
// first host offering SMTPUTF8: without it, the empty outcome list of the
// SMTPUTF8 plan read as "some recipients have outcomes", and the
// recipients were deferred to the next attempt (an hour here).
func TestQueueConnectionLostAtDataTriesTheNextMX(t *testing.T) {
	s := newSink(t)
	_, port, _ := net.SplitHostPort(s.addr)
	startPlainDropAtDataMX(t, net.JoinHostPort("127.0.0.2", port))
	zone := mxZone{
		mx: map[string][]mxRR{"two.test.": {{10, "mx1.two.test."}, {20, "mx2.two.test."}}},
		a:  map[string][4]byte{"mx1.two.test.": {127, 0, 0, 2}, "mx2.two.test.": {127, 0, 0, 1}},
	}
	c := queueCluster(t, s, func(q *QueueConfig) {
		q.Resolver, q.Port = udpResolver(t, zone.reply), port
		q.RetryMin, q.RetryMax = time.Hour, 2*time.Hour
	})
	l := c.leader(time.Second)
	mustApply(t, l, &fsm.ForwardAdd{Address: "totwo@example.com", Targets: []string{"p@two.test"}})
	sendVia(t, c.follower(), "a@example.com", fwdBody, "totwo@example.com")
	waitFor(t, 15*time.Second, "the second MX host took the message", func() bool { return len(s.messages()) == 1 })
}

// startPlainDropAtDataMX serves on addr an SMTP server without SMTPUTF8
// that takes MAIL and RCPT and cuts the connection at DATA.
func startPlainDropAtDataMX(t testing.TB, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on a second loopback address: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				io.WriteString(conn, "220 drop.test ESMTP\r\n")
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
					case strings.HasPrefix(cmd, "EHLO"):
						io.WriteString(conn, "250-drop.test\r\n250 ENHANCEDSTATUSCODES\r\n")
					case cmd == "DATA":
						return
					default:
						io.WriteString(conn, "250 2.0.0 ok\r\n")
					}
				}
			}()
		}
	}()
}
