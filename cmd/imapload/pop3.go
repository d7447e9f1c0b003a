package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pop3Timeout bounds every POP3 exchange.
const pop3Timeout = time.Minute

// pop3Error is a -ERR reply: the session is still usable.
type pop3Error struct{ line string }

func (e pop3Error) Error() string { return "pop3: " + e.line }

type pop3Client struct {
	nc net.Conn
	tp *textproto.Conn
	n  int // messages in the maildrop, from STAT
}

func (p *pop3Client) Close() error { return p.nc.Close() }

// status reads a one-line reply, turning -ERR into a pop3Error.
func (p *pop3Client) status() (string, error) {
	line, err := p.tp.ReadLine()
	if err != nil {
		return "", err
	}
	if rest, ok := strings.CutPrefix(line, "+OK"); ok {
		return strings.TrimSpace(rest), nil
	}
	if strings.HasPrefix(line, "-ERR") {
		return "", pop3Error{line}
	}
	return "", fmt.Errorf("pop3: unexpected reply %q", line)
}

// cmd sends a command and reads its status line.
func (p *pop3Client) cmd(format string, args ...any) (string, error) {
	p.nc.SetDeadline(time.Now().Add(pop3Timeout))
	if err := p.tp.PrintfLine(format, args...); err != nil {
		return "", err
	}
	return p.status()
}

// multi sends a command with a multi-line reply and returns the size of
// the (dot-unstuffed) data.
func (p *pop3Client) multi(format string, args ...any) (int, error) {
	if _, err := p.cmd(format, args...); err != nil {
		return 0, err
	}
	data, err := p.tp.ReadDotBytes()
	return len(data), err
}

// stat runs STAT and remembers the message count.
func (p *pop3Client) stat() error {
	rest, err := p.cmd("STAT")
	if err != nil {
		return err
	}
	f := strings.Fields(rest)
	if len(f) < 2 {
		return fmt.Errorf("pop3: bad STAT reply %q", rest)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return fmt.Errorf("pop3: bad STAT reply %q", rest)
	}
	p.n = n
	return nil
}

// dialPOP3 connects, reads the greeting, does STLS unless plainOK, and
// logs in with USER/PASS.
func dialPOP3(addr string, a account, plainOK bool) (*pop3Client, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	p := &pop3Client{nc: nc, tp: textproto.NewConn(nc)}
	nc.SetDeadline(time.Now().Add(pop3Timeout))
	fail := func(err error) (*pop3Client, error) {
		nc.Close()
		return nil, err
	}
	if _, err := p.status(); err != nil {
		return fail(fmt.Errorf("greeting: %w", err))
	}
	if !plainOK {
		if _, err := p.cmd("STLS"); err != nil {
			return fail(fmt.Errorf("STLS: %w", err))
		}
		host, _, _ := net.SplitHostPort(addr)
		// A load generator for test servers: certificates are not checked.
		tc := tls.Client(nc, &tls.Config{ServerName: host, InsecureSkipVerify: true})
		if err := tc.Handshake(); err != nil {
			return fail(fmt.Errorf("STLS: %w", err))
		}
		p.nc, p.tp = tc, textproto.NewConn(tc)
	}
	if _, err := p.cmd("USER %s", a.user); err != nil {
		return fail(fmt.Errorf("USER %s: %w", a.user, err))
	}
	if _, err := p.cmd("PASS %s", a.pass); err != nil {
		return fail(fmt.Errorf("PASS (%s): %w", a.user, err))
	}
	return p, nil
}

// connectPOP3 logs in and runs STAT, recording LOGIN and STAT.
func (w *worker) connectPOP3(count bool) *pop3Client {
	note := func(name string, d time.Duration, err error) {
		if count {
			w.record(name, d, err)
		} else if err != nil {
			w.setup.fail(name, err)
		} else {
			w.setup.ok(name, d)
		}
	}
	t := time.Now()
	p, err := dialPOP3(w.addr, w.acct, w.c.plainOK)
	note("LOGIN", time.Since(t), err)
	if err != nil {
		return nil
	}
	t = time.Now()
	err = p.stat()
	note("STAT", time.Since(t), err)
	if err != nil {
		p.Close()
		return nil
	}
	w.cur.set(p)
	return p
}

// quit ends a session politely, recording QUIT when count is set.
func (w *worker) quit(p *pop3Client, count bool) {
	t := time.Now()
	_, err := p.cmd("QUIT")
	if count {
		w.record("QUIT", time.Since(t), err)
	}
	p.Close()
}

// runPOP3 is the POP3 session loop: log in, STAT, --pop3-ops-per-session
// commands from the mix on random messages, QUIT, again. No message is
// ever deleted.
func (w *worker) runPOP3(setupCtx context.Context, ready *sync.WaitGroup, start <-chan struct{}) {
	w.rng = rand.New(rand.NewPCG(w.c.seed, uint64(w.id)+1))
	p := w.connectPOP3(false)
	ready.Done()
	select {
	case <-start:
	case <-setupCtx.Done():
		return
	}
	ctx := w.ph.ctx
	defer context.AfterFunc(w.ph.hard, w.cur.kill)()
	done := 0
	for ctx.Err() == nil {
		if p == nil {
			if p = w.connectPOP3(true); p == nil {
				sleepCtx(ctx, 100*time.Millisecond)
				continue
			}
			done = 0
		}
		if done >= w.c.pop3PerSession {
			w.quit(p, true)
			p = nil
			continue
		}
		if !w.take() {
			break
		}
		name, d, err := w.pop3Op(p, pick(w.c.mix, w.rng))
		done++
		w.record(name, d, err)
		var pe pop3Error
		switch {
		case err == nil:
		case errors.Is(err, errEmpty): // log in again later: new mail may have come
			w.quit(p, false)
			p = nil
			sleepCtx(ctx, 100*time.Millisecond)
		case !errors.As(err, &pe): // the connection is gone or out of step
			p.Close()
			p = nil
		}
	}
	if p != nil {
		w.quit(p, false)
	}
}

// pop3Op runs one POP3 command on a random message.
func (w *worker) pop3Op(p *pop3Client, op string) (string, time.Duration, error) {
	name := strings.ToUpper(op)
	needMsg := op == "top" || op == "retr"
	if needMsg && p.n == 0 {
		return name, 0, errEmpty
	}
	msg := 1 + w.rng.IntN(max(p.n, 1))
	t := time.Now()
	var err error
	var size int
	switch op {
	case "stat":
		err = p.stat()
	case "noop":
		_, err = p.cmd("NOOP")
	case "list":
		_, err = p.multi("LIST")
	case "uidl":
		_, err = p.multi("UIDL")
	case "top":
		size, err = p.multi("TOP %d 0", msg)
	case "retr":
		size, err = p.multi("RETR %d", msg)
	default:
		return name, 0, fmt.Errorf("no such POP3 command %q", op)
	}
	d := time.Since(t)
	if err == nil && needMsg && size == 0 {
		err = pop3Error{fmt.Sprintf("%s %d returned no data", name, msg)}
	}
	return name, d, err
}
