package frontend

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSMTPMetricsCountReplies: each reply to MAIL, RCPT and the final dot
// is counted under its code and enhanced status, and so are connections,
// over real SMTP.
func TestSMTPMetricsCountReplies(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig()
	cfg.MaxConnsPerIP = 1
	srv, addr := startServer(t, cfg, newFakeDeliverer())
	if err := srv.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}

	c := dial(t, addr)
	c.ehlo()
	c.expect("MAIL FROM:<s@example.net>", 250, "2.0.0")
	c.expect("RCPT TO:<alice@example.com>", 250, "2.0.0")
	c.expect("RCPT TO:<nobody@example.com>", 550, "5.1.1")
	c.expect("RCPT TO:<nobody2@example.com>", 550, "5.1.1")
	c.expect("RCPT TO:<full@example.com>", 452, "4.2.2")
	checkReply(t, "DATA", c.data("Subject: hi\r\n\r\nbody\r\n"), 250, "2.0.0")
	c.expect("MAIL FROM:<s@example.net>", 250, "2.0.0")
	c.expect("MAIL FROM:<s@example.net>", 503, "5.5.1") // nested
	over := dialRaw(t, addr)
	checkReply(t, "second connection", over.read(), 421, "4.7.0")

	want := map[[3]string]float64{
		{"mail", "250", "2.0.0"}: 2,
		{"rcpt", "250", "2.0.0"}: 1,
		{"rcpt", "550", "5.1.1"}: 2,
		{"rcpt", "452", "4.2.2"}: 1,
		{"data", "250", "2.0.0"}: 1,
		{"mail", "503", "5.5.1"}: 1,
	}
	for k, n := range want {
		if got := testutil.ToFloat64(srv.metrics.replies.WithLabelValues(k[0], k[1], k[2])); got != n {
			t.Errorf("replies %v: %v, want %v", k, got, n)
		}
	}
	if got := testutil.CollectAndCount(srv.metrics.replies); got != len(want) {
		t.Errorf("%d reply series, want %d", got, len(want))
	}
	if got := testutil.ToFloat64(srv.metrics.bytes); got < float64(len("Subject: hi\r\n\r\nbody\r\n")) {
		t.Errorf("received bytes %v", got)
	}

	// What /metrics shows: the protocol label and the connection counts.
	expo := `
# HELP powermail_connections_open Connections open now.
# TYPE powermail_connections_open gauge
powermail_connections_open{proto="smtp"} 1
# HELP powermail_connections_refused_total Connections refused at a connection limit, per IP or the server's.
# TYPE powermail_connections_refused_total counter
powermail_connections_refused_total{proto="smtp"} 1
# HELP powermail_connections_total Connections accepted.
# TYPE powermail_connections_total counter
powermail_connections_total{proto="smtp"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expo),
		"powermail_connections_open", "powermail_connections_refused_total", "powermail_connections_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "powermail_smtp_data_seconds"); err != nil || n != 1 {
		t.Errorf("data latency histogram: %d series, %v", n, err)
	}

	// The same registry cannot take a second SMTP server's metrics, but
	// it can take an LMTP server's.
	for _, lmtp := range []bool{false, true} {
		cfg.LMTP = lmtp
		other, err := NewSMTPServer(cfg, newFakeDeliverer())
		if err != nil {
			t.Fatal(err)
		}
		if err := other.RegisterMetrics(reg); (err == nil) != lmtp {
			t.Errorf("a second server, LMTP %v, beside the SMTP one: %v", lmtp, err)
		}
	}
}
