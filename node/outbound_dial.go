package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// dialSMTP opens a session to host: STARTTLS at once (RFC 3207), EHLO
// under TLS, and AUTH PLAIN for a relay with credentials (RFC 4954, RFC
// 4616). TLS is opportunistic (RFC 7435), so a server that spoke but did
// not give us TLS (no STARTTLS offered, a refusal, a failed handshake)
// gets the message in plaintext on a new connection, as other MTAs do;
// one that never spoke is not tried twice. A relay with RelayRequireTLS,
// or with credentials, gets verified TLS or nothing: a password must
// not cross a path where STARTTLS can be stripped or the server
// impersonated.
func (n *Node) dialSMTP(ctx context.Context, host string, relay bool) (*pooledClient, error) {
	q := &n.cfg.Queue
	required := relay && (q.RelayRequireTLS || q.RelayUser != "")
	pc, spoke, err := n.dialSession(ctx, host, relay, n.outboundTLS(host, required))
	switch {
	case err == nil:
		return pc, nil
	case required && spoke && !errors.Is(err, ErrRelayAuth): // TLS or the EHLO under it failed
		return nil, fmt.Errorf("%w: %s: %v", ErrTLSRequired, host, err)
	case required || !spoke || ctx.Err() != nil:
		return nil, err
	}
	pc, _, perr := n.dialSession(ctx, host, relay, nil)
	if perr != nil {
		return nil, perr
	}
	n.log.Debug("queue: no TLS with this server; sending in plaintext", "host", host, "err", err)
	return pc, nil
}

// outboundTLS is the TLS configuration for host: verified only for a
// relay that requires TLS (or has credentials); otherwise an unverified channel still beats
// plain text (RFC 7435).
func (n *Node) outboundTLS(host string, verify bool) *tls.Config {
	cfg := n.cfg.Queue.TLS.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(host)
	}
	cfg.InsecureSkipVerify = !verify
	return cfg
}

// dialSession opens one connection and runs the session's setup on it,
// with STARTTLS when tlsCfg is set. The setup (connect, greeting, EHLO,
// STARTTLS, AUTH) has DialTimeout + GreetingTimeout, within the attempt's
// deadline: a server that accepts and never speaks must not hold the
// entry past either, and failing its own budget marks it down
// (hostdown.go). spoke reports whether the server sent anything.
func (n *Node) dialSession(ctx context.Context, host string, relay bool, tlsCfg *tls.Config) (pc *pooledClient, spoke bool, err error) {
	q := &n.cfg.Queue
	setup, cancel := context.WithTimeout(ctx, q.DialTimeout+q.GreetingTimeout)
	defer cancel()
	d := net.Dialer{Timeout: q.DialTimeout, Resolver: q.Resolver}
	conn, err := d.DialContext(setup, "tcp", host)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrNoRoute, err)
	}
	stop := closeOnDone(setup, conn)
	defer stop()
	hc := &sessionConn{Conn: conn, name: q.Hostname, cmdLimit: q.GreetingTimeout, writeLimit: q.DataTimeout}
	c, err := n.startSession(hc, host, relay, tlsCfg)
	if err != nil {
		conn.Close()
		return nil, hc.spoke.Load(), err
	}
	hc.cmdLimit = 0
	if !stop() { // a deadline closed the connection meanwhile
		c.Close()
		return nil, true, fmt.Errorf("%w: %s: %v", ErrNoRoute, host, setup.Err())
	}
	c.CommandTimeout = 5 * time.Minute // RFC 5321 §4.5.3.2
	return &pooledClient{c: c, conn: conn, host: host, used: time.Now()}, true, nil
}

// startSession runs greeting, EHLO (with STARTTLS and EHLO again when
// tlsCfg is set) and AUTH on conn.
func (n *Node) startSession(conn net.Conn, host string, relay bool, tlsCfg *tls.Config) (*smtp.Client, error) {
	q := &n.cfg.Queue
	var c *smtp.Client
	if tlsCfg == nil {
		c = smtp.NewClient(conn)
	} else {
		var err error
		if c, err = smtp.NewClientStartTLS(conn, tlsCfg); err != nil {
			return nil, fmt.Errorf("%w: STARTTLS with %s: %v", ErrNoRoute, host, err)
		}
	}
	if err := c.Hello(q.Hostname); err != nil { // under TLS, the handshake too
		c.Close()
		return nil, fmt.Errorf("%w: EHLO to %s: %v", ErrNoRoute, host, err)
	}
	if relay && q.RelayUser != "" {
		if err := c.Auth(sasl.NewPlainClient("", q.RelayUser, q.RelayPassword)); err != nil {
			c.Close()
			return nil, fmt.Errorf("%w: AUTH with %s: %w", ErrRelayAuth, host, err)
		}
	}
	return c, nil
}

// maxReplyBytes bounds what a server may send in answer to one command
// (or between two of our writes): go-smtp and textproto read a reply of
// any number of lines, and a hostile server's endless one would sit in
// memory and then in the queue's records and a bounce.
const maxReplyBytes = 64 << 10

// errReplyTooLong fails a session whose server answered at such length.
var errReplyTooLong = fmt.Errorf("%w: the server's reply is over %d bytes", ErrNoRoute, maxReplyBytes)

// sessionConn is a session's connection under go-smtp's client. It names
// this host in the EHLO that go-smtp's STARTTLS client sends before TLS,
// which it always words "EHLO localhost" (its first write, whole); it
// notes whether the server sent anything; it holds each command of the
// setup, the greeting first, to cmdLimit (GreetingTimeout), which
// go-smtp's deadlines (CommandTimeout, 5 minutes, set before every
// command) would otherwise exceed; it gives every write writeLimit
// (DataTimeout), since go-smtp sets no deadline while the message is
// written (RFC 5321 §4.5.3.2.5 asks one per data block); and it fails a
// reply over maxReplyBytes.
type sessionConn struct {
	net.Conn
	name     string
	wrote    bool
	spoke    atomic.Bool
	cmdLimit time.Duration // 0 once the session is set up
	// writeLimit bounds each write (0: none).
	writeLimit time.Duration
	unread     int // bytes read since our last write
}

func (c *sessionConn) SetDeadline(t time.Time) error {
	if limit := time.Now().Add(c.cmdLimit); c.cmdLimit > 0 && !t.IsZero() && t.After(limit) {
		t = limit
	}
	return c.Conn.SetDeadline(t)
}

func (c *sessionConn) Write(p []byte) (int, error) {
	c.unread = 0
	if limit := c.writeLimit; limit > 0 {
		if c.cmdLimit > 0 {
			limit = min(limit, c.cmdLimit)
		}
		if err := c.Conn.SetWriteDeadline(time.Now().Add(limit)); err != nil {
			return 0, err
		}
	}
	if !c.wrote {
		c.wrote = true
		if string(p) == "EHLO localhost\r\n" && c.name != "" {
			if _, err := c.Conn.Write([]byte("EHLO " + c.name + "\r\n")); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

func (c *sessionConn) Read(p []byte) (int, error) {
	if c.unread > maxReplyBytes {
		return 0, errReplyTooLong
	}
	k, err := c.Conn.Read(p)
	if k > 0 {
		c.spoke.Store(true)
		c.unread += k
	}
	return k, err
}
