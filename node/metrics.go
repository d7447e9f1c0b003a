package node

import (
	"math"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"powermail/storage"
)

// metrics are per node (a test process runs several nodes), registered on
// the node's own registry and served by its admin API at /metrics.
type metrics struct {
	reg            *prometheus.Registry
	applyLatency   prometheus.Histogram
	bodyWrite      prometheus.Histogram
	applyBatch     prometheus.Histogram
	applyBatchSize prometheus.Histogram
	readIndex      prometheus.Histogram
	readRounds     prometheus.Counter
	rpcDials       prometheus.Counter
	restores       prometheus.Counter
	snapsRefused   prometheus.Counter
	adminRequests  *prometheus.CounterVec
	delivered      prometheus.Counter
	gcBodies       prometheus.Counter
	gcBytes        prometheus.Counter
	noticesDropped prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		applyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "powermail_raft_commit_seconds", Help: "Time from proposing a command on this node to its applied result.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		bodyWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "powermail_body_replicate_seconds", Help: "Time to store a delivered body on this node and its peers (write quorum reached).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		applyBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "powermail_fsm_apply_batch_seconds", Help: "Time to apply one batch of committed entries.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
		}),
		applyBatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "powermail_fsm_apply_batch_entries", Help: "Entries per applied batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		readIndex: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "powermail_read_index_seconds", Help: "Time to pass the read-index barrier.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}),
		readRounds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "powermail_read_index_rounds_total", Help: "Read-index rounds run by this node: each costs a round trip to the leader, or the leader's quorum check.",
		}),
		rpcDials: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "powermail_cluster_rpc_dials_total", Help: "Connections this node opened to peers for cluster RPCs (each a handshake).",
		}),
		restores: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "powermail_fsm_snapshot_restores_total", Help: "Snapshots installed into the state.",
		}),
		snapsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "powermail_raft_snapshots_refused_total",
			Help: "Raft snapshot streams (a view spilled to send, or one received) refused for cutting into the free-space reserve (--min-free-space).",
		}),
		adminRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "powermail_admin_requests_total", Help: "Admin API requests by route and status code.",
		}, []string{"route", "code"}),
	}
	m.delivered = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "powermail_delivered_total", Help: "Message copies committed to mailboxes through this node.",
	})
	m.noticesDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "powermail_success_notices_dropped_total", Help: "Delivery success notices (RFC 3461 NOTIFY=SUCCESS) dropped because too many were in flight.",
	})
	m.gcBodies = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "powermail_gc_bodies_total", Help: "Unreferenced bodies collected on every replica (leader).",
	})
	m.gcBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "powermail_gc_freed_bytes_total", Help: "Bytes freed cluster-wide by collection rounds this node led.",
	})
	m.reg.MustRegister(m.delivered, m.noticesDropped, m.gcBodies, m.gcBytes, m.applyLatency, m.bodyWrite, m.applyBatch, m.applyBatchSize, m.readIndex, m.readRounds, m.rpcDials, m.restores, m.snapsRefused, m.adminRequests,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Metrics is the registry the node's /metrics serves, for the servers in
// front of the node to add their own collectors to.
func (n *Node) Metrics() prometheus.Registerer { return n.metrics.reg }

// watchRaft exposes raft's own view as gauges read at scrape time.
func (m *metrics) watchRaft(r *raft.Raft) {
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	gauge("powermail_raft_state", "0 follower, 1 candidate, 2 leader, 3 shutdown.", func() float64 { return float64(r.State()) })
	gauge("powermail_raft_term", "Current raft term.", func() float64 { return float64(r.CurrentTerm()) })
	gauge("powermail_raft_commit_index", "Raft commit index.", func() float64 { return float64(r.CommitIndex()) })
	gauge("powermail_raft_applied_index", "Index last handed to the FSM.", func() float64 { return float64(r.AppliedIndex()) })
	gauge("powermail_raft_last_index", "Last index in the raft log.", func() float64 { return float64(r.LastIndex()) })
}

// watchBodies exposes the body store's free space and health as gauges
// read at scrape time: what an operator alerts on before a disk fills
// (free bytes nearing the reserve) and after a store failed (until it
// is reopened, bodyreopen.go).
func (m *metrics) watchBodies(s *storage.Store) {
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	space := func(pick func(avail, total, reserve uint64) uint64) func() float64 {
		return func() float64 {
			avail, total, reserve, err := s.Space()
			if err != nil {
				return math.NaN()
			}
			return float64(pick(avail, total, reserve))
		}
	}
	gauge("powermail_body_store_free_bytes", "Bytes available on the body store's filesystem; at or below the reserve the node refuses new bodies.",
		space(func(avail, _, _ uint64) uint64 { return avail }))
	gauge("powermail_body_store_size_bytes", "Size of the body store's filesystem.",
		space(func(_, total, _ uint64) uint64 { return total }))
	gauge("powermail_body_store_reserve_bytes", "Free space the body store keeps (--min-free-space).",
		space(func(_, _, reserve uint64) uint64 { return reserve }))
	gauge("powermail_body_store_failed", "1 when a write or fsync failed the body store: it refuses every delivery until it is reopened (--body-store-reopen-interval) or the node restarts.", func() float64 {
		if s.Failed() != nil {
			return 1
		}
		return 0
	})
}
