package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Outbound SMTP: finding the receiving server of a domain and keeping
// connections to it. RFC 5321 §5.1: MX records in preference order; with
// none, the domain's own address records (implicit MX); a null MX (RFC
// 7505, a single "." host) means the domain accepts no mail.

// Outbound errors.
var (
	// ErrNullMX: the domain publishes a null MX (permanent).
	ErrNullMX = errors.New("domain accepts no mail (null MX)")
	// ErrNoSuchDomain: the domain has neither MX nor address records
	// (an authoritative "no such name" for both; permanent).
	ErrNoSuchDomain = errors.New("domain has no mail server (no MX or address records)")
	// ErrNoRoute: no server of the destination could be reached (temporary).
	ErrNoRoute = errors.New("no reachable mail server")
	// ErrTLSRequired: the smarthost offers no STARTTLS and TLS is required.
	ErrTLSRequired = errors.New("STARTTLS required but not offered")
	// ErrRelayAuth: the smarthost refused our credentials (over TLS).
	ErrRelayAuth = errors.New("relay refused the credentials")
	// ErrDestinationBusy: every connection to the destination host stayed
	// in use for QueueConfig.BusyWait (temporary; the entry is given back).
	ErrDestinationBusy = errors.New("every connection to the destination is in use")
)

// route is where to send mail for one domain: hosts to try in order.
type route struct {
	hosts []string // host:port
	relay bool     // a smarthost: AUTH and required TLS apply
}

func (n *Node) routeFor(ctx context.Context, domain string) (route, error) {
	q := &n.cfg.Queue
	domain = asciiName(domain) // DNS knows a Unicode domain by its A-labels
	if q.RelayHost != "" {
		return route{hosts: []string{q.RelayHost}, relay: true}, nil
	}
	if hp, ok := q.DestOverride[strings.ToLower(domain)]; ok {
		return route{hosts: []string{hp}}, nil
	}
	// Rooted, so that the resolver's search list is never tried: its
	// last name's "no such name" would stand in for the real name's
	// SERVFAIL, and a temporary failure would bounce.
	fqdn := strings.TrimSuffix(domain, ".") + "."
	mxs, err := q.Resolver.LookupMX(ctx, fqdn)
	var dnsErr *net.DNSError
	// LookupMX returns records with an error only when it dropped some
	// whose names were malformed: the rest are usable exchanges, and
	// waiting for the zone to be fixed would bounce the mail in days.
	if len(mxs) > 0 {
		err = nil
	}
	switch {
	case err == nil && len(mxs) > 0:
		var r route
		for _, mx := range mxs { // sorted by preference, shuffled within one
			// RFC 7505 §3: a null MX is published alone. Beside real
			// exchanges it is a mistake to skip: joined with the port,
			// its empty name would dial this very machine.
			if mx.Host != "." && mx.Host != "" {
				r.hosts = append(r.hosts, net.JoinHostPort(strings.TrimSuffix(mx.Host, "."), q.Port))
			}
		}
		if len(r.hosts) == 0 {
			return route{}, fmt.Errorf("%w: %s", ErrNullMX, domain)
		}
		return r, nil
	case err == nil || errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		// Implicit MX: the domain's A/AAAA records, resolved at dial
		// time. When the name has none either (a mistyped domain), no
		// retry can help, so the sender hears at once, not when the
		// queue lifetime ends. A failed lookup is left to the dial.
		if asciiDomain(domain) && n.noAddress(ctx, fqdn) && n.noAddress(ctx, domain) {
			return route{}, fmt.Errorf("%w: %s", ErrNoSuchDomain, domain)
		}
		return route{hosts: []string{net.JoinHostPort(domain, q.Port)}}, nil
	default:
		return route{}, fmt.Errorf("%w: MX lookup for %s: %v", ErrNoRoute, domain, err)
	}
}

// noAddress reports whether name has no address records, by an answer
// that says so. Both the rooted name and the name as the dial will ask
// must say it: only the rooted one cannot be a search-list name's
// answer, and only the other is found in /etc/hosts (both Go's resolver
// and the C library ignore a rooted name there).
func (n *Node) noAddress(ctx context.Context, name string) bool {
	_, err := n.cfg.Queue.Resolver.LookupNetIP(ctx, "ip", name)
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// asciiDomain reports whether domain is one the resolver really asks
// about: Go's answers "no such name" for a non-ASCII (unconverted IDN)
// name without sending a query, which must not count as the domain's
// own answer.
func asciiDomain(domain string) bool {
	for _, r := range domain {
		if !(r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return domain != ""
}

// pooledClient is one SMTP session kept open between messages.
type pooledClient struct {
	c    *smtp.Client
	conn net.Conn
	host string
	used time.Time
	took time.Time // when its current transaction took it (get)
}

// smtpPool keeps up to MaxConnsPerDest connections per destination host,
// reusing idle ones for IdleTimeout. A slot is held by an open
// connection, busy or idle; a caller waits for whichever comes first, an
// idle connection or a free slot.
type smtpPool struct {
	n      *Node
	mu     sync.Mutex
	hosts  map[string]*poolHost
	swept  time.Time // the last sweepIdle, under mu
	closed bool      // closeIdle ran: nothing is kept idle any more
}

type poolHost struct {
	line    hostLine
	slots   chan struct{}
	idle    chan *pooledClient // never more than slots, so a put never blocks
	health  hostHealth
	lastUse time.Time // under the pool's mu
}

func newSMTPPool(n *Node) *smtpPool {
	return &smtpPool{n: n, hosts: map[string]*poolHost{}}
}

func (p *smtpPool) host(host string) *poolHost {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.hosts[host]
	if !ok {
		k := p.n.cfg.Queue.MaxConnsPerDest
		h = &poolHost{slots: make(chan struct{}, k), idle: make(chan *pooledClient, k)}
		p.hosts[host] = h
	}
	h.lastUse = time.Now()
	return h
}

// get returns an idle connection to host, or dials one when a slot is
// free, waiting for either otherwise, up to BusyWait (ErrDestinationBusy
// then). A host that failed a dial within HostDownTime is not dialled
// (hostdown.go), unless an operator's retry asks (operator).
func (p *smtpPool) get(ctx context.Context, host string, relay, operator bool) (*pooledClient, error) {
	h := p.host(host)
	q := &p.n.cfg.Queue
	var busy <-chan time.Time
	if q.BusyWait > 0 {
		t := time.NewTimer(q.BusyWait)
		defer t.Stop()
		busy = t.C
	}
	for {
		if err := ctx.Err(); err != nil { // an ended attempt must not cut the idle connections
			return nil, err
		}
		var pc *pooledClient
		select {
		case pc = <-h.idle: // an idle connection before a new one
		default:
			select {
			case h.slots <- struct{}{}:
				return p.dial(ctx, h, host, relay, operator)
			default:
			}
			var dial bool
			var err error
			if pc, dial, err = p.wait(ctx, h, host, busy); dial {
				return p.dial(ctx, h, host, relay, operator)
			} else if err != nil {
				return nil, err
			}
		}
		if time.Since(pc.used) < p.n.cfg.Queue.IdleTimeout && p.reset(ctx, pc) {
			pc.took = time.Now()
			return pc, nil
		}
		p.discard(pc)
	}
}

// wait waits for an idle connection to h or a free slot (dial), until
// busy fires; then the caller gets a busyError saying when to come back.
func (p *smtpPool) wait(ctx context.Context, h *poolHost, host string, busy <-chan time.Time) (pc *pooledClient, dial bool, err error) {
	q := &p.n.cfg.Queue
	gaveUp := func() error {
		return &busyError{host: host, until: h.line.giveBack(time.Now(), q.MaxConnsPerDest, q.RetryMax)}
	}
	if busy != nil {
		h.line.enter()
		defer h.line.leave()
	}
	select {
	case pc = <-h.idle:
		return pc, false, nil
	case h.slots <- struct{}{}:
		return nil, true, nil
	case <-busy:
		return nil, false, gaveUp()
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// reset readies an idle connection for a new transaction (RSET), within
// the attempt's deadline: a server that stopped answering while idle
// must not hold the attempt for a command timeout.
func (p *smtpPool) reset(ctx context.Context, pc *pooledClient) bool {
	stop := closeOnDone(ctx, pc.conn)
	err := pc.c.Reset()
	return stop() && err == nil
}

// dial opens a connection in the slot the caller holds, unless the host
// is marked down and no operator asked, and records how the dial went.
func (p *smtpPool) dial(ctx context.Context, h *poolHost, host string, relay, operator bool) (*pooledClient, error) {
	took := time.Now() // the slot's use starts with the dial
	if err := h.health.down(time.Now()); err != nil && !operator {
		<-h.slots
		return nil, err
	}
	q := &p.n.cfg.Queue
	pc, err := p.n.dialSMTP(ctx, host, relay)
	// A dial the attempt cut short (its deadline nearly spent in slot
	// waits and other hosts, or a shutdown) is no verdict on the host.
	if err == nil || ctx.Err() == nil {
		if h.health.observe(host, err, time.Now(), q.HostDownTime) {
			p.n.log.Info("queue: destination host marked down", "host", host, "for", q.HostDownTime, "err", err)
		}
	}
	if err != nil {
		<-h.slots
		return nil, err
	}
	pc.took = took
	return pc, nil
}

// put returns a connection after use; a broken one is closed, and so is
// every one returned once the pool is closed (a worker can finish after
// the queue loop ended).
func (p *smtpPool) put(pc *pooledClient, ok bool) {
	p.host(pc.host).line.ended(time.Since(pc.took))
	if ok {
		pc.used = time.Now()
		h := p.host(pc.host)
		p.mu.Lock()
		if !p.closed {
			h.idle <- pc // never blocks: idle has room for every slot
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	p.discard(pc)
}

func (p *smtpPool) discard(pc *pooledClient) {
	pc.c.Close()
	<-p.host(pc.host).slots
}

// sweepIdle closes the idle connections that have outlived IdleTimeout,
// at most once per half of it: without a sweep, a connection to a host
// not written to again stayed open (the far end closes it, our socket
// stays) until the next message for that host, and a server sending to
// many domains kept thousands of them.
func (p *smtpPool) sweepIdle(now time.Time) {
	ttl := p.n.cfg.Queue.IdleTimeout
	p.mu.Lock()
	if now.Sub(p.swept) < ttl/2 {
		p.mu.Unlock()
		return
	}
	p.swept = now
	hosts := make([]*poolHost, 0, len(p.hosts))
	for name, h := range p.hosts {
		// A host unused for two idle times, with nothing open and no
		// down mark, is forgotten, so the map does not keep every host
		// ever sent to. A caller between host() and taking a slot used
		// it just now.
		if len(h.slots) == 0 && len(h.idle) == 0 && now.Sub(h.lastUse) > 2*ttl && h.health.down(now) == nil {
			delete(p.hosts, name)
			continue
		}
		hosts = append(hosts, h)
	}
	p.mu.Unlock()
	for _, h := range hosts {
		for range len(h.idle) {
			var pc *pooledClient
			select {
			case pc = <-h.idle:
			default:
			}
			if pc == nil {
				break
			}
			if now.Sub(pc.used) < ttl {
				h.idle <- pc // room: it held a slot, and it was just taken out
				continue
			}
			p.discard(pc)
		}
	}
}

// poolQuitWait bounds how long closing the pool waits for the answers
// to its QUITs, all of them together: a server gone silent while idle
// must not hold a node's shutdown for go-smtp's command timeout (5
// minutes) per connection.
const poolQuitWait = 2 * time.Second

// closeIdle ends every idle connection (node shutdown): QUIT to each at
// once (RFC 5321 §4.1.1.10), and whatever has not answered within
// poolQuitWait is closed.
func (p *smtpPool) closeIdle() {
	p.mu.Lock()
	p.closed = true
	hosts := make([]*poolHost, 0, len(p.hosts))
	for _, h := range p.hosts {
		hosts = append(hosts, h)
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), poolQuitWait)
	defer cancel()
	var wg sync.WaitGroup
	for _, h := range hosts {
		for {
			var pc *pooledClient
			select {
			case pc = <-h.idle:
			default:
			}
			if pc == nil {
				break
			}
			wg.Go(func() {
				stop := closeOnDone(ctx, pc.conn)
				pc.c.Quit()
				stop()
				p.discard(pc)
			})
		}
	}
	wg.Wait()
}

// closeOnDone closes conn when ctx ends, until the returned stop is
// called; stop reports whether it came first.
func closeOnDone(ctx context.Context, conn net.Conn) func() bool {
	return context.AfterFunc(ctx, func() { conn.Close() })
}
