package check

// Replication count names.
const (
	CountUnderReplicated = "under_replicated"
	CountMissing         = "missing"
	CountVerifyShort     = "verify_short"
)

// BodyReplicas is what the cluster reported about one message body: the
// nodes holding a verified (checksummed) replica, and the required R.
// Short is set when the cluster's own end-to-end verification (every
// listed replica read back and checked on its node) found fewer than R
// replicas that verify, whatever Nodes says.
type BodyReplicas struct {
	Hash  string   `json:"hash"`
	Nodes []string `json:"nodes"`
	R     int      `json:"r"`
	Short bool     `json:"short,omitempty"`
}

// CheckReplication checks that every body has verified replicas on at least
// R distinct nodes. Entries for the same hash are merged (union of nodes,
// largest R, Short if any says so). A body on no node is "missing", on
// fewer than R "under_replicated", one the cluster's verification found
// short "verify_short"; R below 1 is malformed input.
func CheckReplication(bodies []BodyReplicas, opts Options) Result {
	c := newCollector(NameReplication, opts, CountUnderReplicated, CountMissing, CountVerifyShort,
		"bodies", "replicated", "over_replicated")
	merged := mergeBodies(bodies)
	c.add("bodies", len(merged))
	for _, hash := range sortedKeys(merged) {
		checkBody(c, hash, merged[hash])
	}
	return c.result()
}

type bodyNodes struct {
	nodes map[string]bool
	r     int
	short bool
}

func mergeBodies(bodies []BodyReplicas) map[string]*bodyNodes {
	merged := map[string]*bodyNodes{}
	for _, b := range bodies {
		m := merged[b.Hash]
		if m == nil {
			m = &bodyNodes{nodes: map[string]bool{}}
			merged[b.Hash] = m
		}
		m.r = max(m.r, b.R)
		m.short = m.short || b.Short
		for _, n := range b.Nodes {
			if n != "" {
				m.nodes[n] = true
			}
		}
	}
	return merged
}

func checkBody(c *collector, hash string, b *bodyNodes) {
	nodes := sortedKeys(b.nodes)
	switch {
	case b.r < 1:
		c.violation(CountMalformed, "body %s: required replicas R=%d", hash, b.r)
	case len(nodes) == 0:
		c.violation(CountMissing, "body %s: no verified replica (R=%d)", hash, b.r)
	case len(nodes) < b.r:
		c.violation(CountUnderReplicated, "body %s: %d of %d replicas, on %v", hash, len(nodes), b.r, nodes)
	case b.short:
		c.violation(CountVerifyShort, "body %s: listed on %v, but fewer than %d replicas verify", hash, nodes, b.r)
	case len(nodes) > b.r:
		c.add("over_replicated", 1)
		c.add("replicated", 1)
	default:
		c.add("replicated", 1)
	}
}
