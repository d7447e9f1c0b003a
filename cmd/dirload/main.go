// Command dirload measures the directory at scale (`make bench-load`): it
// starts a three-process cluster with devcluster, loads N mailboxes
// through the admin API in batches, reports the load rate, each node's
// resident memory, and RCPT-style lookup latency, then stops the cluster.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"powermail/fsm"
)

type config struct {
	bin, devcluster, dir string
	mailboxes, batch     int
	workers, offset      int
	domains              int
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "bin/powermail", "powermail binary")
	flag.StringVar(&c.devcluster, "devcluster", "bin/devcluster", "devcluster binary")
	flag.StringVar(&c.dir, "dir", "", "cluster directory (default: a temporary one, removed afterwards)")
	flag.IntVar(&c.mailboxes, "mailboxes", 1000000, "mailboxes to load")
	flag.IntVar(&c.batch, "batch", 5000, "mailboxes per API request (one raft entry)")
	flag.IntVar(&c.workers, "workers", 4, "concurrent loaders")
	flag.IntVar(&c.offset, "port-offset", 300, "port offset passed to devcluster")
	flag.IntVar(&c.domains, "domains", 10, "domains to spread the mailboxes over")
	measure := flag.String("measure-state", "", "only measure in-process lookups on this stopped node's fsm directory (from a kept --dir)")
	flag.Parse()
	if *measure != "" {
		if err := localLookups(*measure, c); err != nil {
			fmt.Fprintln(os.Stderr, "dirload:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), c); err != nil {
		fmt.Fprintln(os.Stderr, "dirload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	keep := c.dir != ""
	if !keep {
		d, err := os.MkdirTemp("", "pm-dirload")
		if err != nil {
			return err
		}
		c.dir = d
		defer os.RemoveAll(d)
	}
	dev := func(verb string) error {
		out, err := exec.Command(c.devcluster, "--bin", c.bin, "--dir", c.dir, "--port-offset", fmt.Sprint(c.offset), "--quiet", verb).CombinedOutput()
		if err != nil {
			return fmt.Errorf("devcluster %s: %v: %s", verb, err, out)
		}
		return nil
	}
	if err := dev("start"); err != nil {
		return err
	}
	defer dev("stop")
	raw, err := os.ReadFile(filepath.Join(c.dir, "secret"))
	if err != nil {
		return err
	}
	api := &client{token: strings.TrimSpace(string(raw))}
	for i := 0; i < 3; i++ {
		api.addrs = append(api.addrs, fmt.Sprintf("127.0.0.1:%d", 8000+c.offset+i))
	}
	fmt.Printf("cluster up in %s; loading %d mailboxes in batches of %d with %d workers\n", c.dir, c.mailboxes, c.batch, c.workers)
	if err := load(ctx, api, c); err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		fmt.Printf("n%d memory: %s\n", i+1, memory(filepath.Join(c.dir, fmt.Sprintf("n%d.pid", i+1))))
	}
	if err := apiLookups(ctx, api, c); err != nil {
		return err
	}
	if err := dev("stop"); err != nil {
		return err
	}
	return localLookups(filepath.Join(c.dir, "n3", "fsm"), c)
}

func addr(i, domains int) string { return fmt.Sprintf("user%d@load%d.example", i, i%domains) }

func load(ctx context.Context, api *client, c config) error {
	for d := 0; d < c.domains; d++ {
		if err := api.post(ctx, d, "/v1/domains", map[string]string{"name": fmt.Sprintf("load%d.example", d)}); err != nil {
			return err
		}
	}
	hash, err := fsm.HashPassword("load-test")
	if err != nil {
		return err
	}
	var next, done atomic.Int64
	start := time.Now()
	stop := make(chan struct{})
	go progress(&done, c.mailboxes, start, stop)
	var wg sync.WaitGroup
	errs := make(chan error, c.workers)
	for w := 0; w < c.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(int64(c.batch))) - c.batch
				if from >= c.mailboxes {
					return
				}
				var batch []map[string]any
				for i := from; i < min(from+c.batch, c.mailboxes); i++ {
					batch = append(batch, map[string]any{"address": addr(i, c.domains), "password_hash": hash})
				}
				if err := api.post(ctx, from/c.batch, "/v1/mailboxes/batch", map[string]any{"mailboxes": batch}); err != nil {
					errs <- err
					return
				}
				done.Add(int64(len(batch)))
			}
		}()
	}
	wg.Wait()
	close(stop)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Printf("loaded %d mailboxes in %v: %.0f mailboxes/s\n", c.mailboxes, el.Round(time.Millisecond), float64(c.mailboxes)/el.Seconds())
	return nil
}

func progress(done *atomic.Int64, total int, start time.Time, stop chan struct{}) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			n := done.Load()
			fmt.Printf("  %d/%d (%.0f%%), %.0f/s\n", n, total, 100*float64(n)/float64(total), float64(n)/time.Since(start).Seconds())
		}
	}
}

// memory reads VmRSS and VmHWM (peak RSS) of the process in pidfile.
func memory(pidfile string) string {
	raw, err := os.ReadFile(pidfile)
	if err != nil {
		return err.Error()
	}
	status, err := os.ReadFile("/proc/" + strings.TrimSpace(string(raw)) + "/status")
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "VmRSS") || strings.HasPrefix(line, "VmHWM") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(out, ", ")
}

// apiLookups resolves random addresses through a follower's admin API:
// HTTP, token check, read-index barrier and the lookup.
func apiLookups(ctx context.Context, api *client, c config) error {
	rng := rand.New(rand.NewPCG(7, 8))
	var lat []time.Duration
	for i := 0; i < 5000; i++ {
		start := time.Now()
		if err := api.get(ctx, 2, "/v1/resolve/"+addr(rng.IntN(c.mailboxes), c.domains)); err != nil {
			return err
		}
		lat = append(lat, time.Since(start))
	}
	fmt.Printf("resolve through the admin API (HTTP + barrier), 5000 sequential: %s\n", percentiles(lat))
	return nil
}

// localLookups opens a stopped node's directory and measures Resolve as
// the SMTP RCPT path calls it, in process.
func localLookups(dir string, c config) error {
	st, err := fsm.Open(dir, fsm.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	// Let the compactions that opening may start finish first: the figure
	// is for a node in service, not one that is settling.
	time.Sleep(10 * time.Second)
	rng := rand.New(rand.NewPCG(1, 2))
	for round, name := range []string{"cold cache", "warm cache"} {
		var lat []time.Duration
		for i := 0; i < 500000; i++ {
			a := addr(rng.IntN(c.mailboxes), c.domains)
			start := time.Now()
			if _, err := st.Resolve(a); err != nil {
				return fmt.Errorf("resolve %s: %w", a, err)
			}
			lat = append(lat, time.Since(start))
		}
		fmt.Printf("resolve on n3's state in process, 500000 random, %s (pass %d): %s\n", name, round+1, percentiles(lat))
	}
	return nil
}

func percentiles(lat []time.Duration) string {
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	return fmt.Sprintf("p50 %v, p90 %v, p99 %v, p99.9 %v", p(0.5), p(0.9), p(0.99), p(0.999))
}

type client struct {
	addrs []string
	token string
}

func (c *client) do(ctx context.Context, node int, method, path string, body any) error {
	var rd *bytes.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.addrs[node%len(c.addrs)]+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e map[string]string
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, e["message"])
	}
	return nil
}

func (c *client) post(ctx context.Context, node int, path string, body any) error {
	return c.do(ctx, node, "POST", path, body)
}

func (c *client) get(ctx context.Context, node int, path string) error {
	return c.do(ctx, node, "GET", path, nil)
}
