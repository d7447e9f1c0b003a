// Command smtpload is the delivery load generator of `make bench`: it
// sends fixed-size messages over persistent SMTP (or LMTP) connections to
// one or more servers, at several concurrency levels in turn, printing
// progress every second and, per level, messages/s and latency
// percentiles (from MAIL FROM to the reply after the final dot). A level
// of 5 s or more also reports its rate in each fifth of the run; with
// --hold, a level whose last fifth falls too far below its first fails the
// run, which makes a long level a soak check (`make bench-soak`). With
// --pop3, sessions empty the recipient's mailbox over POP3 meanwhile
// (drain.go), so a soak runs in a real installation's steady state.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	addrs    []string
	levels   []int
	duration time.Duration
	size     int
	from, to string
	lmtp     bool
	hold     float64  // fail when a level's last fifth falls below this fraction of its first
	drain    *drainer // nil: no POP3 draining
}

func main() {
	var c config
	addrs := flag.String("addrs", "127.0.0.1:2525", "comma-separated server addresses; connections are spread over them")
	levels := flag.String("concurrency", "1,5,20,50", "comma-separated numbers of concurrent connections, run in turn")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "how long each level runs")
	flag.IntVar(&c.size, "size", 4096, "message size in bytes")
	flag.StringVar(&c.from, "from", "load@sender.test", "envelope sender")
	flag.StringVar(&c.to, "to", "demo@example.com", "recipient")
	flag.BoolVar(&c.lmtp, "lmtp", false, "speak LMTP (LHLO) instead of SMTP")
	flag.Float64Var(&c.hold, "hold", 0, "exit 1 if a level's rate in its last fifth falls below this fraction of its first fifth (a soak check; 0 is off)")
	pop3 := flag.String("pop3", "", "comma-separated POP3 addresses: empty the recipient's mailbox over POP3 while the load runs")
	pop3Pass := flag.String("pop3-pass", "demo-password", "the recipient's password, with --pop3")
	drainers := flag.Int("drainers", 1, "concurrent POP3 sessions, with --pop3")
	flag.Parse()
	c.addrs = strings.Split(*addrs, ",")
	if *pop3 != "" {
		c.drain = &drainer{addrs: strings.Split(*pop3, ","), user: c.to, pass: *pop3Pass}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.drain.run(ctx, max(*drainers, 1)); close(done) }()
		defer func() { stop(); <-done }()
	}
	for _, l := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "smtpload: bad --concurrency")
			os.Exit(2)
		}
		c.levels = append(c.levels, n)
	}
	fmt.Printf("%-11s %10s %9s %9s %9s %7s\n", "connections", "msgs/s", "p50", "p99", "max", "errors")
	failed := false
	for _, n := range c.levels {
		r := runLevel(context.Background(), c, n)
		fmt.Printf("%-11d %10.0f %9s %9s %9s %7d\n", n, r.rate, r.p50, r.p99, r.max, r.errors)
		if len(r.fifths) == 5 {
			fmt.Printf("  by fifths of the run: %.0f %.0f %.0f %.0f %.0f msgs/s\n", r.fifths[0], r.fifths[1], r.fifths[2], r.fifths[3], r.fifths[4])
			if c.hold > 0 && r.fifths[4] < c.hold*r.fifths[0] {
				fmt.Printf("  the last fifth ran at %.2f of the first, below --hold %.2f\n", r.fifths[4]/r.fifths[0], c.hold)
				failed = true
			}
		}
	}
	if d := c.drain; d != nil {
		fmt.Printf("drained over POP3: %d messages (%d bytes), %d session errors, %d in the mailbox at the last login\n",
			d.retrieved.Load(), d.bytes.Load(), d.errs.Load(), d.left.Load())
	}
	if failed {
		os.Exit(1)
	}
}

type result struct {
	rate          float64
	p50, p99, max time.Duration
	errors        int64
	fifths        []float64 // msgs/s in each fifth of the run, when it lasted 5 s or more
}

func runLevel(ctx context.Context, c config, conns int) result {
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var sent, errs atomic.Int64
	start := time.Now()
	done := make(chan struct{})
	perSecond := make(chan []int64, 1)
	go func() { perSecond <- progress(&sent, &errs, conns, c.drain, done) }()
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := worker(ctx, c, c.addrs[i%len(c.addrs)], i, &sent, &errs)
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(done)
	el := time.Since(start)
	r := result{rate: float64(len(lat)) / el.Seconds(), errors: errs.Load(), fifths: fifths(<-perSecond)}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.p50, r.p99, r.max = lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*99/100].Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond)
	}
	return r
}

// progress prints the count every second until done, and returns the
// messages sent in each whole second.
func progress(sent, errs *atomic.Int64, conns int, d *drainer, done chan struct{}) []int64 {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var counts []int64
	last := int64(0)
	for {
		select {
		case <-done:
			return counts
		case <-t.C:
			n := sent.Load()
			drained := ""
			if d != nil {
				drained = fmt.Sprintf(", %d drained over POP3 (%d left)", d.retrieved.Load(), d.left.Load())
			}
			fmt.Fprintf(os.Stderr, "  %d connections: %d sent (%d/s), %d errors%s\n", conns, n, n-last, errs.Load(), drained)
			counts = append(counts, n-last)
			last = n
		}
	}
}

// fifths averages per-second counts over each fifth of a run, so that a
// long run shows whether the rate held.
func fifths(counts []int64) []float64 {
	if len(counts) < 5 {
		return nil
	}
	out := make([]float64, 5)
	for i := range out {
		part := counts[i*len(counts)/5 : (i+1)*len(counts)/5]
		var sum int64
		for _, c := range part {
			sum += c
		}
		out[i] = float64(sum) / float64(len(part))
	}
	return out
}

// worker keeps one connection and sends messages on it until ctx ends,
// reconnecting after an error.
func worker(ctx context.Context, c config, addr string, id int, sent, errs *atomic.Int64) []time.Duration {
	var lat []time.Duration
	seq := 0
	for ctx.Err() == nil {
		conn, nc, err := dial(ctx, addr, c.lmtp)
		if err != nil {
			errs.Add(1)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ctx.Err() == nil {
			seq++
			body := message(c.size, id, seq) // unique: identical bodies would be stored once
			start := time.Now()
			nc.SetDeadline(start.Add(opTimeout))
			if err := sendOne(conn, c, body); err != nil {
				errs.Add(1)
				break
			}
			lat = append(lat, time.Since(start))
			sent.Add(1)
		}
		conn.Cmd("QUIT")
		conn.Close()
	}
	return lat
}

// opTimeout bounds the greeting and each message's transaction, so a
// stuck server shows up as errors rather than a hang.
const opTimeout = time.Minute

func dial(ctx context.Context, addr string, lmtp bool) (*textproto.Conn, net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	nc.SetDeadline(time.Now().Add(opTimeout))
	conn := textproto.NewConn(nc)
	if _, _, err := conn.ReadResponse(220); err != nil {
		conn.Close()
		return nil, nil, err
	}
	hello := "EHLO"
	if lmtp {
		hello = "LHLO"
	}
	if err := cmd(conn, 250, "%s load.test", hello); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, nc, nil
}

func sendOne(conn *textproto.Conn, c config, body []byte) error {
	if err := cmd(conn, 250, "MAIL FROM:<%s>", c.from); err != nil {
		return err
	}
	if err := cmd(conn, 250, "RCPT TO:<%s>", c.to); err != nil {
		return err
	}
	if err := cmd(conn, 354, "DATA"); err != nil {
		return err
	}
	w := conn.DotWriter()
	w.Write(body)
	if err := w.Close(); err != nil {
		return err
	}
	_, _, err := conn.ReadResponse(250)
	return err
}

func cmd(conn *textproto.Conn, want int, format string, args ...any) error {
	id, err := conn.Cmd(format, args...)
	if err != nil {
		return err
	}
	conn.StartResponse(id)
	defer conn.EndResponse(id)
	if _, _, err := conn.ReadResponse(want); err != nil {
		return errors.Join(fmt.Errorf("%s", strings.Fields(format)[0]), err)
	}
	return nil
}

// message builds a size-byte message with headers and 76-character lines.
func message(size, id, seq int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: <load@sender.test>\r\nTo: <rcpt@example.com>\r\nSubject: load %d/%d\r\nMessage-ID: <%d.%d.%d@load.test>\r\n\r\n",
		id, seq, id, seq, time.Now().UnixNano())
	line := strings.Repeat("x", 74) + "\r\n"
	for b.Len()+len(line) <= size {
		b.WriteString(line)
	}
	for b.Len() < size-2 {
		b.WriteByte('y')
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}
