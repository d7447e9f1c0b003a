package node

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"syscall"
	"time"

	"powermail/storage"
)

// Small bodies go to replicas over body streams: mux connections of kind
// kindBody that each carry one upload at a time, kept open between
// uploads. An upload is one write each way, where an HTTP PUT costs a
// header to format and parse and two goroutine hand-offs on each side:
//
//	request: op hash[32] length[4, big endian] body[length]
//	reply:   0                         stored, verified and fsynced ('P')
//	         0 length[2] id            the same, from member id ('Q')
//	         1 length[2] message       not stored
//
// 'Q' is the upload of this release: its answer names the member that
// gave it, and the client refuses another than the one it meant
// (peerid.go). A server takes 'P' too, from a client of an older release.
// The server reads the whole request before it answers, so a connection
// is reusable after every reply. A request longer than smallBody, or any
// other op, is a protocol error and closes the connection, which is what
// a server of an older release does on 'Q': the client then sends that
// peer its bodies as HTTP PUTs (putBody), whose replies name the
// answering member too, and never falls back to 'P', which an attacker
// cutting the stream could otherwise force.

const (
	kindBody byte = 'B'

	bodyOpPut   byte = 'P' // an older release's upload: the answer names no one
	bodyOpPutAs byte = 'Q' // an upload whose answer names the member
	bodyReplyOK byte = 0
	bodyReplyNo byte = 1

	hashLen       = len(storage.Hash{})
	bodyHeaderLen = 1 + hashLen + 4
	// How long each side keeps an unused stream: the client drops its
	// idle streams sooner than the server does, so a reused stream is
	// rarely one the server is closing.
	bodyIdleServer = 2 * time.Minute
	bodyIdleClient = time.Minute
	bodyIdleMax    = 64 // idle streams kept per peer
	// How long a peer that hung up on a 'Q' is sent HTTP PUTs instead,
	// before a stream is tried again (it may have been upgraded).
	bodyOldPeerFor = time.Minute
)

// errBodyStream marks a stream that broke; the body may not be stored.
var errBodyStream = errors.New("body stream failed")

// errOldBodyPeer: the peer hung up on a new stream's 'Q' upload, as a
// release before it does; the body may not be stored.
var errOldBodyPeer = errors.New("the peer does not take body uploads that name it")

// bodyConn is one client stream.
type bodyConn struct {
	net.Conn
	used time.Time
}

// bodyPool keeps idle body streams per peer address.
type bodyPool struct {
	dialer clusterDialer
	mu     sync.Mutex
	idle   map[string][]*bodyConn
	old    map[string]time.Time // peers that hung up on a 'Q', and when
	closed bool
}

func newBodyPool(d clusterDialer) *bodyPool {
	return &bodyPool{dialer: d, idle: map[string][]*bodyConn{}, old: map[string]time.Time{}}
}

// isOld reports whether addr hung up on a 'Q' in the last bodyOldPeerFor.
func (p *bodyPool) isOld(addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.old[addr]
	if ok && time.Since(at) >= bodyOldPeerFor {
		delete(p.old, addr)
		return false
	}
	return ok
}

func (p *bodyPool) markOld(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.old[addr] = time.Now()
}

// get returns an idle stream to addr if one is fresh enough, else nil.
func (p *bodyPool) get(addr string) *bodyConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for s := p.idle[addr]; len(s) > 0; s = p.idle[addr] {
		c := s[len(s)-1]
		p.idle[addr] = s[:len(s)-1]
		if time.Since(c.used) < bodyIdleClient {
			return c
		}
		c.Close()
	}
	return nil
}

func (p *bodyPool) put(addr string, c *bodyConn) {
	c.used = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle[addr]) >= bodyIdleMax {
		c.Close()
		return
	}
	p.idle[addr] = append(p.idle[addr], c)
}

func (p *bodyPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for addr, s := range p.idle {
		for _, c := range s {
			c.Close()
		}
		delete(p.idle, addr)
	}
}

// send uploads data to member id at addr and returns once the peer has
// stored it or refused it. A stream that was idle may have been closed by
// the peer, so a failure on one is retried once on a new stream; an
// upload is idempotent, the store being content-addressed. A peer that
// hung up on a new stream's upload (an older release) is errOldBodyPeer,
// for bodyOldPeerFor.
func (p *bodyPool) send(ctx context.Context, addr, id string, h storage.Hash, data []byte) error {
	if p.isOld(addr) {
		return errOldBodyPeer
	}
	if c := p.get(addr); c != nil {
		err := p.exchange(ctx, addr, id, c, h, data)
		if !errors.Is(err, errBodyStream) || ctx.Err() != nil {
			return err
		}
	}
	conn, err := p.dialer.dial(ctx, addr, kindBody)
	if err != nil {
		return fmt.Errorf("%w: %w", errBodyStream, err)
	}
	err = p.exchange(ctx, addr, id, &bodyConn{Conn: conn}, h, data)
	if errors.Is(err, errBodyStream) && (hungUp(err) || errors.Is(err, syscall.EPIPE)) && ctx.Err() == nil {
		p.markOld(addr)
		return fmt.Errorf("%w: %w", errOldBodyPeer, err)
	}
	return err
}

// exchange runs one upload to member id on c, returning c to the pool if
// it is still in step and id answered. The deadline is ctx's; cancelling
// ctx breaks the stream.
func (p *bodyPool) exchange(ctx context.Context, addr, id string, c *bodyConn, h storage.Hash, data []byte) error {
	dl, _ := ctx.Deadline()
	c.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	var hdr [bodyHeaderLen]byte
	hdr[0] = bodyOpPutAs
	copy(hdr[1:], h[:])
	binary.BigEndian.PutUint32(hdr[1+hashLen:], uint32(len(data)))
	var err error
	if _, ok := c.Conn.(*net.TCPConn); ok {
		msg := net.Buffers{hdr[:], data}
		_, err = msg.WriteTo(c.Conn) // one writev on a TCP connection
	} else {
		_, err = c.Conn.Write(append(hdr[:], data...)) // one TLS record or sealed frame, not two
	}
	if err == nil {
		err = readBodyReply(c, addr, id)
	} else {
		err = fmt.Errorf("%w: %w", errBodyStream, err)
	}
	if !stop() || errors.Is(err, errBodyStream) || errors.Is(err, ErrWrongPeer) {
		closeNow(c.Conn) // its deadline was cut short, it is out of step, or it reaches another member
		return err
	}
	c.SetDeadline(time.Time{})
	p.put(addr, c)
	return err
}

// readBodyReply reads the reply to a 'Q' upload meant for member id:
// nil, the peer's refusal, an answer of another member (ErrWrongPeer),
// or a broken stream (errBodyStream).
func readBodyReply(c net.Conn, addr, id string) error {
	var reply [1]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		return fmt.Errorf("%w: %w", errBodyStream, err)
	}
	if reply[0] != bodyReplyOK && reply[0] != bodyReplyNo {
		return fmt.Errorf("%w: reply byte %d", errBodyStream, reply[0])
	}
	text, err := readBodyText(c)
	switch {
	case err != nil:
		return err
	case reply[0] == bodyReplyNo:
		return fmt.Errorf("peer %s: %s", addr, text)
	}
	if err := answeredAs(id, string(text)); err != nil || len(text) == 0 {
		return cmp.Or(err, fmt.Errorf("%w: an answer to 'Q' that names no one", errBodyStream))
	}
	return nil
}

// readBodyText reads a reply's length[2] and text.
func readBodyText(c net.Conn) ([]byte, error) {
	var size [2]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, fmt.Errorf("%w: %w", errBodyStream, err)
	}
	text := make([]byte, binary.BigEndian.Uint16(size[:]))
	if _, err := io.ReadFull(c, text); err != nil {
		return nil, fmt.Errorf("%w: %w", errBodyStream, err)
	}
	return text, nil
}

// bodyServer serves body streams until closed; close waits for every
// upload in progress, so none outlives the store.
type bodyServer struct {
	n      *Node
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newBodyServer(n *Node) *bodyServer {
	ctx, cancel := context.WithCancel(context.Background())
	return &bodyServer{n: n, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
}

// serve takes over conn, returning at once.
func (s *bodyServer) serve(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		conn.Close()
		return
	}
	s.conns[conn] = struct{}{}
	s.wg.Go(func() {
		defer func() {
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
			conn.Close()
		}()
		if err := s.loop(conn); err != nil && !errors.Is(err, io.EOF) && s.ctx.Err() == nil {
			s.n.log.Debug("body stream closed", "remote", conn.RemoteAddr().String(), "err", err)
		}
	})
}

func (s *bodyServer) close() {
	s.mu.Lock()
	s.closed = true
	s.cancel()
	for c := range s.conns {
		closeNow(c)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// loop answers uploads on one stream until it ends or breaks step.
func (s *bodyServer) loop(conn net.Conn) error {
	var hdr [bodyHeaderLen]byte
	for {
		conn.SetReadDeadline(time.Now().Add(bodyIdleServer))
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return err
		}
		size := binary.BigEndian.Uint32(hdr[1+hashLen:])
		if hdr[0] != bodyOpPut && hdr[0] != bodyOpPutAs || size > smallBody {
			return fmt.Errorf("%w: op %q, %d bytes", errBodyStream, hdr[0], size)
		}
		var want storage.Hash
		copy(want[:], hdr[1:])
		if err := s.upload(conn, hdr[0], want, int(size)); err != nil {
			return err
		}
	}
}

// upload reads one body of size bytes and answers it. The buffer is
// taken only for the upload, so an idle stream holds none.
func (s *bodyServer) upload(conn net.Conn, op byte, want storage.Hash, size int) error {
	buf := s.n.getBodyBuf()
	defer s.n.bodyBufs.Put(buf)
	data := (*buf)[:size]
	conn.SetReadDeadline(time.Now().Add(s.n.cfg.ReplicaTimeout))
	if _, err := io.ReadFull(conn, data); err != nil {
		return err
	}
	if s.n.stallBodies.Load() { // tests: behave like a paused node
		_, err := io.Copy(io.Discard, conn)
		return err
	}
	return s.reply(conn, op, s.store(want, data))
}

// store keeps one uploaded body, verified against its hash and fsynced.
func (s *bodyServer) store(want storage.Hash, data []byte) error {
	n := s.n
	if !n.raftUp.Load() {
		return fmt.Errorf("%w: node %s is starting", ErrUnavailable, n.cfg.ID)
	}
	ctx, cancel := context.WithTimeout(s.ctx, n.cfg.ReplicaTimeout)
	defer cancel()
	bw := n.bodies.NewWriter(ctx)
	defer bw.Abort()
	if _, err := bw.Write(data); err != nil {
		return fmt.Errorf("store body %s: %w", want, err)
	}
	if _, _, err := bw.Commit(ctx, &want); err != nil {
		return fmt.Errorf("store body %s: %w", want, err)
	}
	return nil
}

// reply answers an upload of op: stored (naming this member, for 'Q'),
// or refused with err's text.
func (s *bodyServer) reply(conn net.Conn, op byte, err error) error {
	conn.SetWriteDeadline(time.Now().Add(s.n.cfg.ReplicaTimeout))
	if err == nil && op == bodyOpPut {
		_, werr := conn.Write([]byte{bodyReplyOK})
		return werr
	}
	code, text := bodyReplyOK, s.n.cfg.ID // whole: a cut name is another's
	if err != nil {
		code, text = bodyReplyNo, err.Error()
		text = text[:min(len(text), 1024)]
	}
	text = text[:min(len(text), math.MaxUint16)]
	msg := []byte{code, 0, 0}
	binary.BigEndian.PutUint16(msg[1:], uint16(len(text)))
	_, werr := conn.Write(append(msg, text...))
	return werr
}
