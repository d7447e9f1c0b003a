package frontend

import (
	"fmt"
	"strconv"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
)

// Commands whose replies smtpMetrics counts, where this package decides
// the answer. go-smtp's own replies are not counted: the greeting, EHLO,
// RSET, NOOP, QUIT, syntax errors, commands out of sequence before they
// reach the session, and a SIZE= over the limit, which it refuses before
// calling Mail.
const (
	cmdMail = "mail"
	cmdRcpt = "rcpt"
	cmdData = "data" // the reply after the final dot or the last BDAT chunk; per recipient in LMTP
)

// smtpMetrics counts what one SMTP or LMTP server answered. Replies are
// labelled with their code and enhanced status (RFC 3463), both from the
// fixed set in replies.go, so the label sets stay small. The counters
// exist whether or not RegisterMetrics adds them to a registry.
type smtpMetrics struct {
	replies *prometheus.CounterVec
	bytes   prometheus.Counter
	took    prometheus.Histogram
	ok      map[string]prometheus.Counter // cmd → its "250 2.0.0", looked up once
}

func newSMTPMetrics() *smtpMetrics {
	m := &smtpMetrics{
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "powermail_smtp_replies_total",
			Help: "Replies to MAIL, RCPT and the end of message data (per recipient in LMTP), by reply code and enhanced status.",
		}, []string{"command", "code", "status"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "powermail_smtp_received_bytes_total",
			Help: "Message octets received in transactions that were answered, accepted or not.",
		}),
		took: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "powermail_smtp_data_seconds",
			Help:    "Time from the start of message data to the reply: receiving, replicating and committing the message.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	m.ok = map[string]prometheus.Counter{
		cmdMail: m.replies.WithLabelValues(cmdMail, "250", "2.0.0"),
		cmdRcpt: m.replies.WithLabelValues(cmdRcpt, "250", "2.0.0"),
		cmdData: m.replies.WithLabelValues(cmdData, "250", "2.0.0"),
	}
	return m
}

// reply counts the answer to cmd: nil is go-smtp's "250 2.0.0" for MAIL
// and RCPT.
func (m *smtpMetrics) reply(cmd string, err error) {
	code, status := "451", "4.0.0" // go-smtp's answer to a plain error
	if cmd == cmdData {
		code, status = "554", "5.0.0"
	}
	// go-smtp sends a reply only if it is an *smtp.SMTPError itself, not
	// wrapped; count what it sends.
	se, _ := err.(*smtp.SMTPError)
	switch {
	case err == nil, se != nil && se.Code == 250 && se.EnhancedCode == smtp.EnhancedCode{2, 0, 0}:
		m.ok[cmd].Inc()
		return
	case se != nil:
		code = strconv.Itoa(se.Code)
		if e := se.EnhancedCode; e[0] > 0 {
			status = fmt.Sprintf("%d.%d.%d", e[0], e[1], e[2])
		}
	}
	m.replies.WithLabelValues(cmd, code, status).Inc()
}

// collectors are the server's metrics, its connection counts included.
func (m *smtpMetrics) collectors(t *connTracker) []prometheus.Collector {
	return append([]prometheus.Collector{m.replies, m.bytes, m.took}, t.collectors()...)
}
