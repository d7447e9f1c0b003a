package frontend

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// commandCounts counts a protocol's commands by name and by the status of
// their reply. Only the names listed are labels; any other word a client
// sends counts as "other", so that clients cannot grow the label set.
type commandCounts struct {
	vec *prometheus.CounterVec
	by  map[string][]prometheus.Counter // name -> one counter per result
}

func newCommandCounts(metric, help string, names, results []string) *commandCounts {
	c := &commandCounts{
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metric, Help: help}, []string{"command", "result"}),
		by:  map[string][]prometheus.Counter{},
	}
	for _, v := range append(names, "other") {
		for _, r := range results {
			c.by[v] = append(c.by[v], c.vec.WithLabelValues(strings.ToLower(v), r))
		}
	}
	return c
}

// count records one command: name in upper case, result an index into
// the results the counter was made with.
func (c *commandCounts) count(name string, result int) {
	counters, known := c.by[name]
	if !known {
		counters = c.by["other"]
	}
	counters[result].Inc()
}

// known is name if it is counted by name, else "other".
func (c *commandCounts) known(name string) string {
	if _, ok := c.by[name]; ok {
		return name
	}
	return "other"
}

// pop3Verbs are the POP3 commands counted by name.
var pop3Verbs = []string{"CAPA", "QUIT", "USER", "PASS", "AUTH", "STLS", "APOP",
	"STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "NOOP"}

// POP3 results, by the first reply line.
const (
	pop3OK = iota
	pop3Err
)

// pop3Result is the result of a command whose first reply line began
// with status ('+' or '-').
func pop3Result(status byte) int {
	if status == '+' {
		return pop3OK
	}
	return pop3Err
}

func newPOP3Commands() *commandCounts {
	return newCommandCounts("powermail_pop3_commands_total", "POP3 commands by name and by their reply: ok (+OK) or err (-ERR).",
		pop3Verbs, []string{"ok", "err"})
}

// imapVerbs are the IMAP commands counted by name (RFC 9051 and the
// extensions served); UID commands count as "UID FETCH" and so on.
var imapVerbs = []string{"CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "AUTHENTICATE", "LOGIN", "ENABLE",
	"SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB",
	"NAMESPACE", "STATUS", "APPEND", "IDLE", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH",
	"STORE", "COPY", "MOVE", "ID", "GETQUOTAROOT", "GETQUOTA", "SETQUOTA", "UID FETCH", "UID SEARCH", "UID STORE", "UID COPY", "UID MOVE", "UID EXPUNGE"}

// IMAP results, by the tagged response (RFC 9051 §7.1).
const (
	imapResultOK = iota
	imapResultNo
	imapResultBad
)

func newIMAPCommands() *commandCounts {
	return newCommandCounts("powermail_imap_commands_total", "IMAP commands by name and by their tagged response: ok, no or bad.",
		imapVerbs, []string{"ok", "no", "bad"})
}
