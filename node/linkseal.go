package node

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"sync"
)

// A plain cluster connection that passed the version-2 handshake (mux.go)
// carries its stream in sealed frames, so that an attacker on the path
// who relayed the handshake can neither inject, alter, drop, reorder nor
// replay bytes after it (they can still read them: only cluster TLS hides
// them). Each direction has its own key, derived from the cluster secret
// and both handshake nonces, and its own frame counter:
//
//	frame = length[4] payload[length] tag[16]
//	tag   = HMAC-SHA256(key, counter[8] length[4] payload)[:16]
//
// A frame that fails its tag breaks the connection for good
// (ErrLinkTampered); the peer redials. A TLS connection is not sealed
// again: TLS already authenticates every record.

const (
	sealTagLen    = 16
	sealHeaderLen = 4
	// maxSealFrame bounds a frame's payload, and so the read buffer a
	// connection can be made to hold.
	maxSealFrame = 64 << 10
)

// ErrLinkTampered: a cluster frame failed authentication, so the
// connection was altered on the way (or the peer is not what the
// handshake proved).
var ErrLinkTampered = errors.New("cluster connection failed frame authentication")

// sealKeys derives the two directions' keys of a version-2 connection.
func sealKeys(secret []byte, kind byte, cn, sn, bind []byte) (dialerToListener, listenerToDialer []byte) {
	derive := func(dir byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("powermail link key"))
		m.Write([]byte{dir, kind})
		m.Write(cn)
		m.Write(sn)
		m.Write(bind)
		return m.Sum(nil)
	}
	return derive('d'), derive('l')
}

// sealedConn seals what it writes and opens what it reads. Reads and
// writes may run at once (one goroutine each); deadlines are the
// underlying connection's.
type sealedConn struct {
	net.Conn

	wmu  sync.Mutex
	wmac hash.Hash
	wseq uint64
	wbuf []byte // a small frame's bytes, at most sealCopyMax of payload
	werr error  // sticky: a short write leaves the stream out of step

	rmu   sync.Mutex
	rmac  hash.Hash
	rseq  uint64
	rbuf  []byte // bytes read from the connection, not yet opened
	plain []byte // the opened payload not yet returned (a slice of rbuf)
	rerr  error  // sticky: a bad frame
}

func newSealedConn(conn net.Conn, writeKey, readKey []byte) *sealedConn {
	return &sealedConn{Conn: conn, wmac: hmac.New(sha256.New, writeKey), rmac: hmac.New(sha256.New, readKey)}
}

// tag computes a frame's tag into dst.
func frameTag(m hash.Hash, seq uint64, payload []byte, dst []byte) []byte {
	var pre [12]byte
	binary.BigEndian.PutUint64(pre[:8], seq)
	binary.BigEndian.PutUint32(pre[8:], uint32(len(payload)))
	m.Reset()
	m.Write(pre[:])
	m.Write(payload)
	return m.Sum(dst[:0])[:sealTagLen]
}

// sealCopyMax is the largest frame Write assembles in one buffer (kept
// for the connection); a larger one goes out as a writev of its parts,
// so an idle connection keeps no buffer the size of its largest write.
const sealCopyMax = 8 << 10

// Write sends p in frames of at most maxSealFrame bytes, each with one
// write to the connection.
func (c *sealedConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	done := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxSealFrame)]
		if err := c.writeFrame(chunk); err != nil {
			c.werr = err
			return done, err
		}
		c.wseq++
		done += len(chunk)
		p = p[len(chunk):]
	}
	return done, nil
}

// writeFrame sends one frame: copied into wbuf when small, else as a
// writev of header, payload and tag.
func (c *sealedConn) writeFrame(chunk []byte) error {
	if len(chunk) <= sealCopyMax {
		need := sealHeaderLen + len(chunk) + sha256.Size
		if cap(c.wbuf) < need {
			c.wbuf = make([]byte, sealHeaderLen+sealCopyMax+sha256.Size)
		}
		buf := c.wbuf[:need]
		binary.BigEndian.PutUint32(buf, uint32(len(chunk)))
		copy(buf[sealHeaderLen:], chunk)
		frameTag(c.wmac, c.wseq, chunk, buf[sealHeaderLen+len(chunk):])
		_, err := c.Conn.Write(buf[:need-sha256.Size+sealTagLen])
		return err
	}
	var hdr [sealHeaderLen]byte
	var sum [sha256.Size]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(chunk)))
	parts := net.Buffers{hdr[:], chunk, frameTag(c.wmac, c.wseq, chunk, sum[:])}
	_, err := parts.WriteTo(c.Conn)
	return err
}

// Read returns bytes of opened frames only. A read that times out
// between or within frames can be retried: what was read stays buffered.
func (c *sealedConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.plain) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if err := c.openFrame(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	if len(c.plain) == 0 {
		c.dropOpened() // all returned: free the frame's room now
	}
	return n, nil
}

// openFrame reads until one whole frame is buffered and checks it; its
// payload becomes c.plain. An empty frame is allowed and yields nothing.
func (c *sealedConn) openFrame() error {
	c.dropOpened()
	if err := c.fill(sealHeaderLen); err != nil {
		return err
	}
	// The length is checked as the uint32 it is on the wire: converted
	// first, a length past 2 GiB is negative where int has 32 bits, and
	// passed the check to panic on the slice below. It is read before
	// the tag can be checked, so anyone on the path can send it.
	wire := binary.BigEndian.Uint32(c.rbuf)
	if wire > maxSealFrame {
		c.rerr = fmt.Errorf("%w: frame of %d bytes", ErrLinkTampered, wire)
		return c.rerr
	}
	size := int(wire)
	total := sealHeaderLen + size + sealTagLen
	if err := c.fill(total); err != nil {
		return err
	}
	payload := c.rbuf[sealHeaderLen : sealHeaderLen+size]
	var sum [sha256.Size]byte
	if !hmac.Equal(frameTag(c.rmac, c.rseq, payload, sum[:]), c.rbuf[sealHeaderLen+size:total]) {
		c.rerr = ErrLinkTampered
		return c.rerr
	}
	c.rseq++
	c.plain = payload
	return nil
}

// dropOpened removes the frame whose payload was all returned from the
// front of rbuf, keeping any bytes of later frames.
func (c *sealedConn) dropOpened() {
	if len(c.rbuf) < sealHeaderLen || c.plain == nil {
		return
	}
	total := sealHeaderLen + int(binary.BigEndian.Uint32(c.rbuf)) + sealTagLen
	c.rbuf = c.rbuf[:copy(c.rbuf, c.rbuf[total:])]
	c.plain = nil
	if len(c.rbuf) == 0 && cap(c.rbuf) > sealKeepRead {
		c.rbuf = nil // an idle connection keeps no large buffer
	}
}

// sealKeepRead is the largest read buffer kept between frames.
const sealKeepRead = 16 << 10

// fill reads from the connection until rbuf holds at least n bytes,
// reading more when more has arrived.
func (c *sealedConn) fill(n int) error {
	if len(c.rbuf) >= n {
		return nil
	}
	if cap(c.rbuf) < n {
		grown := make([]byte, len(c.rbuf), max(n, min(2*cap(c.rbuf), sealHeaderLen+maxSealFrame+sealTagLen), 4<<10))
		copy(grown, c.rbuf)
		c.rbuf = grown
	}
	for len(c.rbuf) < n {
		m, err := c.Conn.Read(c.rbuf[len(c.rbuf):cap(c.rbuf)])
		c.rbuf = c.rbuf[:len(c.rbuf)+m]
		if err != nil && len(c.rbuf) < n {
			if errors.Is(err, io.EOF) && len(c.rbuf) > 0 {
				err = io.ErrUnexpectedEOF // cut inside a frame
			}
			return err
		}
	}
	return nil
}
