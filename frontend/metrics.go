package frontend

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Every server here counts into its own collectors and adds them to a
// registry only when asked (RegisterMetrics): a test process runs several
// servers, and nothing is registered globally. A node's registry serves
// them at /metrics, each labelled with its protocol.

// connCounts are the connection figures every listener kind keeps.
type connCounts struct {
	admitted atomic.Uint64 // connections let in, ever
	refused  atomic.Uint64 // connections turned away at a connection limit
}

// collectors reports c, and open as the connections open now.
func (c *connCounts) collectors(open func() int) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "powermail_connections_total", Help: "Connections accepted.",
		}, func() float64 { return float64(c.admitted.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "powermail_connections_refused_total", Help: "Connections refused at a connection limit, per IP or the server's.",
		}, func() float64 { return float64(c.refused.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "powermail_connections_open", Help: "Connections open now.",
		}, func() float64 { return float64(open()) }),
	}
}

// register adds cs to reg, labelled proto="name".
func register(reg prometheus.Registerer, proto string, cs []prometheus.Collector) error {
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"proto": proto}, reg)
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("frontend: register %s metrics: %w", proto, err)
		}
	}
	return nil
}
