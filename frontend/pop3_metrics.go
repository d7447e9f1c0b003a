package frontend

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// pop3Verbs are the commands counted by name; any other word a client
// sends counts as "other", so that clients cannot grow the label set.
var pop3Verbs = []string{"CAPA", "QUIT", "USER", "PASS", "AUTH", "STLS", "APOP",
	"STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "NOOP"}

// pop3Commands counts commands by name and by the status of their first
// reply line (+OK or -ERR).
type pop3Commands struct {
	vec *prometheus.CounterVec
	by  map[string][2]prometheus.Counter // verb -> {ok, err}
}

func newPOP3Commands() *pop3Commands {
	c := &pop3Commands{
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "powermail_pop3_commands_total", Help: "POP3 commands by name and by their reply: ok (+OK) or err (-ERR).",
		}, []string{"command", "result"}),
		by: map[string][2]prometheus.Counter{},
	}
	for _, v := range append(pop3Verbs, "other") {
		name := strings.ToLower(v)
		c.by[v] = [2]prometheus.Counter{c.vec.WithLabelValues(name, "ok"), c.vec.WithLabelValues(name, "err")}
	}
	return c
}

// count records one command: verb in upper case, ok whether its reply
// was +OK.
func (c *pop3Commands) count(verb string, ok bool) {
	pair, known := c.by[verb]
	if !known {
		pair = c.by["other"]
	}
	if ok {
		pair[0].Inc()
	} else {
		pair[1].Inc()
	}
}
