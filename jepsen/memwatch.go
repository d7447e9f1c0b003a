package jepsen

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// memWatch samples the resident memory of every running node, so that a
// long run shows whether a node's memory levels off or keeps growing.
type memWatch struct {
	mu   sync.Mutex
	peak map[string]int64 // node ID -> highest RSS seen, bytes
	last map[string]int64
}

func newMemWatch() *memWatch {
	return &memWatch{peak: map[string]int64{}, last: map[string]int64{}}
}

// sample reads each node's RSS and returns them for the progress line,
// as "n1=812M n2=790M"; a node that is down or unreadable is left out.
func (m *memWatch) sample(nodes []*Node) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var parts []string
	for _, n := range nodes {
		pid := n.Pid()
		if pid == 0 {
			continue
		}
		rss, err := residentBytes(pid)
		if err != nil {
			continue
		}
		m.last[n.ID] = rss
		m.peak[n.ID] = max(m.peak[n.ID], rss)
		parts = append(parts, fmt.Sprintf("%s=%dM", n.ID, rss>>20))
	}
	return strings.Join(parts, " ")
}

// summary is one line for the report: peak and last RSS per node.
func (m *memWatch) summary() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.peak) == 0 {
		return ""
	}
	ids := make([]string, 0, len(m.peak))
	for id := range m.peak {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%s peak %d MiB, last %d MiB", id, m.peak[id]>>20, m.last[id]>>20)
	}
	return "resident memory: " + strings.Join(parts, "; ")
}

// residentBytes reads VmRSS from /proc/PID/status (Linux).
func residentBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS of %d: %w", pid, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS for process %d", pid)
}
