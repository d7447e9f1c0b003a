package check

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Linearizability count names.
const (
	CountNonLinearizable = "nonlinearizable_keys"
	CountUnknown         = "unknown_keys"
	CountMalformed       = "malformed"
)

// maxVisualizedKeys bounds how many failing partitions go into one
// visualisation, to keep the verbose re-check and the HTML small.
const maxVisualizedKeys = 8

// keyed is implemented by the models' inputs; it names the partition.
type keyed interface{ partitionKey() string }

// lineariser turns calls into porcupine operations.
type lineariser struct {
	clients map[int]int // process -> dense porcupine client id
	horizon int64       // return time of ops with unknown outcome
}

func newLineariser(calls []Call) *lineariser {
	l := &lineariser{clients: map[int]int{}}
	var procs []int
	for _, c := range calls {
		l.horizon = max(l.horizon, c.End()+1, c.Start()+1)
		if _, ok := l.clients[c.Invoke.Process]; !ok {
			l.clients[c.Invoke.Process] = 0
			procs = append(procs, c.Invoke.Process)
		}
	}
	sort.Ints(procs)
	for i, p := range procs {
		l.clients[p] = i
	}
	return l
}

// op builds a porcupine operation. An op with an unknown outcome returns at
// the horizon, after everything else: it may take effect at any point after
// its invocation, or (by taking effect last) not at all.
func (l *lineariser) op(c Call, in keyed, out any, unknown bool) porcupine.Operation {
	ret := c.End()
	if unknown {
		ret = l.horizon
	}
	meta := fmt.Sprintf("process %d, node %s, op %d", c.Invoke.Process, c.Invoke.Node, c.Invoke.Index)
	return porcupine.Operation{ClientId: l.clients[c.Invoke.Process], Input: in, Call: c.Start(),
		Output: out, Return: ret, Metadata: meta}
}

func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	parts := map[string][]porcupine.Operation{}
	for _, op := range history {
		k := op.Input.(keyed).partitionKey()
		parts[k] = append(parts[k], op)
	}
	out := make([][]porcupine.Operation, 0, len(parts))
	for _, k := range sortedKeys(parts) {
		out = append(out, parts[k])
	}
	return out
}

func describeMetadata(info any) string {
	if s, ok := info.(string); ok {
		return s
	}
	return ""
}

// runLinear checks each key's operations separately, so that failures name
// their key, and visualises the failing keys.
func runLinear(c *collector, model porcupine.Model, ops []porcupine.Operation, opts Options) {
	parts := partitionByKey(ops)
	c.add("keys", len(parts))
	c.add("ops", len(ops))
	deadline := time.Now().Add(opts.Timeout)
	var bad []porcupine.Operation
	badKeys := 0
	for _, part := range parts {
		key := part[0].Input.(keyed).partitionKey()
		switch checkPart(model, part, opts.Timeout, deadline) {
		case porcupine.Illegal:
			c.violation(CountNonLinearizable, "key %s: %d operations are not linearizable", key, len(part))
			if badKeys < maxVisualizedKeys {
				bad = append(bad, part...)
				badKeys++
			}
		case porcupine.Unknown:
			c.violation(CountUnknown, "key %s: linearizability search timed out", key)
		}
	}
	if len(bad) > 0 && opts.VisualizeDir != "" {
		visualize(c, model, bad, opts)
	}
}

func checkPart(model porcupine.Model, part []porcupine.Operation, timeout time.Duration, deadline time.Time) porcupine.CheckResult {
	if timeout <= 0 {
		return porcupine.CheckOperationsTimeout(model, part, 0)
	}
	left := time.Until(deadline)
	if left <= 0 {
		return porcupine.Unknown
	}
	return porcupine.CheckOperationsTimeout(model, part, left)
}

func visualize(c *collector, model porcupine.Model, ops []porcupine.Operation, opts Options) {
	path, err := writeVisualization(model, ops, opts.VisualizeDir, c.name)
	if err != nil {
		c.note("visualisation not written: %v", err)
		return
	}
	c.artifacts = append(c.artifacts, path)
}

func writeVisualization(model porcupine.Model, ops []porcupine.Operation, dir, name string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create visualisation dir: %w", err)
	}
	_, info := porcupine.CheckOperationsVerbose(model, ops, 0)
	path := filepath.Join(dir, name+".html")
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}
