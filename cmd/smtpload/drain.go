package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// drainer empties a mailbox over POP3 while the load runs, the way a
// POP3 user who leaves no mail on the server does: log in, retrieve and
// delete up to drainBatch messages, QUIT (which commits the deletions),
// again. With it a soak reaches the steady state of a real installation
// (folders stay small, expunged messages leave tombstones, garbage
// collection deletes bodies) instead of one ever-growing INBOX.
type drainer struct {
	addrs      []string
	user, pass string

	retrieved atomic.Int64 // messages retrieved and deleted (committed by QUIT)
	bytes     atomic.Int64
	errs      atomic.Int64
	left      atomic.Int64 // messages in the maildrop at the last login
}

// drainBatch bounds one session's deletions, so that each QUIT commits a
// moderate expunge, as a mail client's periodic poll does, and the
// pipelined commands of one session fit in the socket buffers.
const drainBatch = 500

// run drains with n concurrent sessions, spread over the addresses, until
// ctx ends. Sessions that find the maildrop locked by another (RFC 2449
// IN-USE) wait briefly and try again.
func (d *drainer) run(ctx context.Context, n int) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			addr := d.addrs[i%len(d.addrs)]
			for ctx.Err() == nil {
				if err := d.session(ctx, addr); err != nil && ctx.Err() == nil {
					d.errs.Add(1)
					select {
					case <-ctx.Done():
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		})
	}
	wg.Wait()
}

// session is one POP3 login: everything retrieved is deleted, and counts
// only once QUIT has committed the deletions.
func (d *drainer) session(ctx context.Context, addr string) error {
	var dl net.Dialer
	nc, err := dl.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	nc.SetDeadline(time.Now().Add(opTimeout))
	c := textproto.NewConn(nc)
	if _, err := popLine(c); err != nil {
		return err
	}
	if _, err := popCmd(c, "USER %s", d.user); err != nil {
		return err
	}
	if _, err := popCmd(c, "PASS %s", d.pass); err != nil {
		return err
	}
	stat, err := popCmd(c, "STAT")
	if err != nil {
		return err
	}
	count, _ := strconv.Atoi(strings.Fields(stat + " 0")[0])
	d.left.Store(int64(count))
	// RETR and DELE of the whole batch, and QUIT, go out at once (RFC
	// 2449 PIPELINING, which the server announces); the replies are read
	// in order. The commands fit in the socket buffers, so writing them
	// all before reading cannot deadlock.
	batch := min(count, drainBatch)
	for i := 1; i <= batch; i++ {
		fmt.Fprintf(c.W, "RETR %d\r\nDELE %d\r\n", i, i)
	}
	fmt.Fprintf(c.W, "QUIT\r\n")
	if err := c.W.Flush(); err != nil {
		return err
	}
	var size int64
	for range batch {
		if _, err := popLine(c); err != nil {
			return fmt.Errorf("RETR: %w", err)
		}
		n, err := io.Copy(io.Discard, c.DotReader())
		if err != nil {
			return err
		}
		if _, err := popLine(c); err != nil {
			return fmt.Errorf("DELE: %w", err)
		}
		size += n
	}
	if _, err := popLine(c); err != nil {
		return fmt.Errorf("QUIT: %w", err)
	}
	got := int64(batch)
	d.retrieved.Add(got)
	d.bytes.Add(size)
	return nil
}

// popLine reads one status line and returns what follows "+OK".
func popLine(c *textproto.Conn) (string, error) {
	line, err := c.ReadLine()
	if err != nil {
		return "", err
	}
	if rest, ok := strings.CutPrefix(line, "+OK"); ok {
		return strings.TrimSpace(rest), nil
	}
	return "", fmt.Errorf("pop3: %q", line)
}

func popCmd(c *textproto.Conn, format string, args ...any) (string, error) {
	if err := c.PrintfLine(format, args...); err != nil {
		return "", err
	}
	rest, err := popLine(c)
	if err != nil {
		return "", errors.Join(fmt.Errorf("%s", strings.Fields(format)[0]), err)
	}
	return rest, nil
}
