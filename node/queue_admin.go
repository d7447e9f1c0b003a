package node

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"powermail/fsm"
)

// Operator view of the outbound queue: admin routes behind
// `powermail queue ls|show|retry|drop`, and its metrics.

type queueMetrics struct {
	outcomes *prometheus.CounterVec
	dsns     prometheus.Counter
}

// watchQueue registers the queue metrics. Depth and age are read from
// the local state at scrape time, so every node reports them.
func (n *Node) watchQueue() {
	q := n.queue
	q.m.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "powermail_queue_attempts_total", Help: "Outbound recipient attempts worked by this node, by outcome (sent, temp, perm; busy: given back while every connection to the destination host was in use; down: given back, its hosts marked down after a failed dial).",
	}, []string{"outcome"})
	q.m.dsns = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "powermail_queue_dsns_total", Help: "Delivery status notifications committed by this node.",
	})
	cache := &statsCache{load: n.state.QueueStats, ttl: queueStatsTTL}
	stats := func(f func(fsm.QueueStats) float64) func() float64 {
		return func() float64 {
			st, err := cache.get(time.Now())
			if err != nil {
				return 0
			}
			return f(st)
		}
	}
	n.metrics.reg.MustRegister(q.m.outcomes, q.m.dsns,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "powermail_queue_entries", Help: "Outbound queue entries."},
			stats(func(s fsm.QueueStats) float64 { return float64(s.Entries) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "powermail_queue_recipients", Help: "Outbound recipients still pending."},
			stats(func(s fsm.QueueStats) float64 { return float64(s.Recipients) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "powermail_queue_oldest_age_seconds", Help: "Age of the oldest outbound queue entry."},
			stats(func(s fsm.QueueStats) float64 {
				if s.Oldest == 0 {
					return 0
				}
				return time.Since(time.UnixMilli(s.Oldest)).Seconds()
			})))
}

func (n *Node) countOutcome(outcome string) { n.queue.m.outcomes.WithLabelValues(outcome).Inc() }

func (n *Node) queueRoutes(route func(string, func(*http.Request) (any, error))) {
	route("GET /v1/queue", func(r *http.Request) (any, error) {
		if err := n.Barrier(r.Context()); err != nil {
			return nil, err
		}
		lim, err := limit(r)
		if err != nil {
			return nil, err
		}
		return n.state.QueueList(r.URL.Query().Get("after"), lim)
	})
	route("GET /v1/queue/{id}", func(r *http.Request) (any, error) {
		if err := n.Barrier(r.Context()); err != nil {
			return nil, err
		}
		return n.state.QueueGet(r.PathValue("id"))
	})
	route("POST /v1/queue/{id}/retry", func(r *http.Request) (any, error) {
		v, err := n.Apply(r.Context(), &fsm.QueueRetry{ID: r.PathValue("id"), Now: time.Now().UnixMilli()})
		if err == nil {
			n.queue.kick()
		}
		return v, err
	})
	// Drop removes the entry without a DSN: the operator decided.
	route("DELETE /v1/queue/{id}", func(r *http.Request) (any, error) {
		if _, err := n.state.QueueGet(r.PathValue("id")); err != nil {
			if berr := n.Barrier(r.Context()); berr != nil {
				return nil, berr
			}
			if _, err := n.state.QueueGet(r.PathValue("id")); err != nil {
				return nil, err
			}
		}
		_, err := n.Apply(r.Context(), &fsm.QueueRemove{ID: r.PathValue("id")})
		return nil, err
	})
}

// queueStatsTTL is how long one scan of the queue answers the queue
// gauges: a scrape reads three of them, and several scrapers may ask.
const queueStatsTTL = 5 * time.Second

// statsCache keeps the last queue scan for ttl, so that the gauges cost
// one scan of every entry per ttl at most, however often they are read.
type statsCache struct {
	load func() (fsm.QueueStats, error)
	ttl  time.Duration
	mu   sync.Mutex
	at   time.Time
	last fsm.QueueStats
}

func (c *statsCache) get(now time.Time) (fsm.QueueStats, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && now.Sub(c.at) < c.ttl {
		return c.last, nil
	}
	st, err := c.load()
	if err != nil {
		return fsm.QueueStats{}, err
	}
	c.at, c.last = now, st
	return st, nil
}
