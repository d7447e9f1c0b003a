package frontend

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"powermail/node"
)

// discardDeliverer accepts everything and drops the body: the benchmark
// measures the frontend only.
type discardDeliverer struct{}

func (discardDeliverer) Resolve(_ context.Context, rcpt string) (node.Resolution, error) {
	return node.Resolution{Mailboxes: []string{rcpt}}, nil
}

func (discardDeliverer) Deliver(_ context.Context, _ node.Message, body io.Reader) (node.DeliveryResult, error) {
	_, err := io.Copy(io.Discard, body)
	return node.DeliveryResult{}, err
}

// BenchmarkSMTPDeliver4K: pipelined MAIL/RCPT/DATA of a 4 KiB message per
// iteration, one connection per parallel client, over loopback.
//
//	go test -run '^$' -bench SMTPDeliver4K -benchtime 3s ./frontend/
func BenchmarkSMTPDeliver4K(b *testing.B) {
	cfg := testConfig()
	cfg.MaxConnsPerIP = 1000
	_, addr := startServer(b, cfg, discardDeliverer{})
	body := benchBody(4096)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		conn, tp := benchDial(b, addr)
		defer conn.Close()
		envelope := []byte("MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
		content := []byte(body + ".\r\n")
		for pb.Next() {
			if _, err := conn.Write(envelope); err != nil {
				b.Error(err)
				return
			}
			for _, want := range []int{250, 250, 354} {
				if _, _, err := tp.ReadResponse(want); err != nil {
					b.Error(err)
					return
				}
			}
			if _, err := conn.Write(content); err != nil {
				b.Error(err)
				return
			}
			if _, _, err := tp.ReadResponse(250); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func benchDial(b *testing.B, addr string) (net.Conn, *textproto.Conn) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	tp := textproto.NewConn(conn)
	if _, _, err := tp.ReadResponse(220); err != nil {
		b.Fatal(err)
	}
	if _, err := io.WriteString(conn, "EHLO bench.test\r\n"); err != nil {
		b.Fatal(err)
	}
	if _, _, err := tp.ReadResponse(250); err != nil {
		b.Fatal(err)
	}
	return conn, tp
}

// benchBody is n octets of 78-column text lines, none starting with a dot.
func benchBody(n int) string {
	var sb strings.Builder
	w := bufio.NewWriter(&sb)
	line := strings.Repeat("abcdefghij", 8)[:76] + "\r\n"
	for sb.Len()+w.Buffered()+len(line) <= n {
		w.WriteString(line)
	}
	w.Flush()
	sb.WriteString(strings.Repeat("z", n-sb.Len()-2) + "\r\n")
	return sb.String()
}

func (discardDeliverer) SendAsAlias(context.Context, string, string) (bool, error) { return false, nil }
