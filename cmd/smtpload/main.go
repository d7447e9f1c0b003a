// Command smtpload is the delivery load generator of `make bench`: it
// sends fixed-size messages over persistent SMTP (or LMTP) connections to
// one or more servers, at several concurrency levels in turn, printing
// progress every second and, per level, messages/s and latency
// percentiles (from MAIL FROM to the reply after the final dot).
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
	flag.Parse()
	c.addrs = strings.Split(*addrs, ",")
	for _, l := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(l))
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "smtpload: bad --concurrency")
			os.Exit(2)
		}
		c.levels = append(c.levels, n)
	}
	fmt.Printf("%-11s %10s %9s %9s %9s %7s\n", "connections", "msgs/s", "p50", "p99", "max", "errors")
	for _, n := range c.levels {
		r := runLevel(context.Background(), c, n)
		fmt.Printf("%-11d %10.0f %9s %9s %9s %7d\n", n, r.rate, r.p50, r.p99, r.max, r.errors)
	}
}

type result struct {
	rate          float64
	p50, p99, max time.Duration
	errors        int64
}

func runLevel(ctx context.Context, c config, conns int) result {
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var sent, errs atomic.Int64
	start := time.Now()
	done := make(chan struct{})
	go progress(&sent, &errs, conns, done)
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
	r := result{rate: float64(len(lat)) / el.Seconds(), errors: errs.Load()}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.p50, r.p99, r.max = lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*99/100].Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond)
	}
	return r
}

func progress(sent, errs *atomic.Int64, conns int, done chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := int64(0)
	for {
		select {
		case <-done:
			return
		case <-t.C:
			n := sent.Load()
			fmt.Fprintf(os.Stderr, "  %d connections: %d sent (%d/s), %d errors\n", conns, n, n-last, errs.Load())
			last = n
		}
	}
}

// worker keeps one connection and sends messages on it until ctx ends,
// reconnecting after an error.
func worker(ctx context.Context, c config, addr string, id int, sent, errs *atomic.Int64) []time.Duration {
	var lat []time.Duration
	seq := 0
	for ctx.Err() == nil {
		conn, err := dial(ctx, addr, c.lmtp)
		if err != nil {
			errs.Add(1)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for ctx.Err() == nil {
			seq++
			body := message(c.size, id, seq) // unique: identical bodies would be stored once
			start := time.Now()
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

func dial(ctx context.Context, addr string, lmtp bool) (*textproto.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(time.Minute))
	conn := textproto.NewConn(nc)
	if _, _, err := conn.ReadResponse(220); err != nil {
		conn.Close()
		return nil, err
	}
	hello := "EHLO"
	if lmtp {
		hello = "LHLO"
	}
	if err := cmd(conn, 250, "%s load.test", hello); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
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
