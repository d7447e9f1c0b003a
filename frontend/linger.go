package frontend

import (
	"crypto/tls"
	"net"
	"time"
)

// Lingering close. A connection closed while the client's octets wait
// unread, or with more of them still arriving, is answered by the
// server's kernel with a reset (RFC 1122 §4.2.2.13: a host that closes
// with received data pending SHOULD send RST), and a client stack that
// gets the reset may drop what it had received but not yet read: the
// server's last reply, the one that says why it closed (an endless
// line's POP3 -ERR, SMTP 500 5.4.0, IMAP BYE [TOOBIG]). So when a
// session ends while the client may still be sending, the server first
// shuts down its sending side (TLS close_notify, then TCP FIN: the client
// reads the reply and then the end), reads and discards what the client
// still sends until the client closes its side too or a bound is
// reached, and only then closes.
const (
	// LingerTimeout bounds how long a lingering close reads on.
	LingerTimeout = 2 * time.Second
	// LingerMaxBytes bounds how much a lingering close reads and
	// discards; a client that sends more within LingerTimeout is closed
	// on (it gets the reset then, after the reply had that long to
	// arrive).
	LingerMaxBytes = 1 << 20
)

// lingerBufSize is the discard buffer of one lingering close: the only
// memory it takes, whatever the client sends.
const lingerBufSize = 16 << 10

// closeWriter is a connection whose sending side can be shut down
// alone: *net.TCPConn and *net.UnixConn (FIN), *tls.Conn (close_notify,
// RFC 8446 §6.1).
type closeWriter interface{ CloseWrite() error }

// shutTLS sends close_notify on c if it is a TLS connection whose
// handshake is done (CloseWrite refuses one that is not). It sends it
// once, however often it is called, and Close does not send another.
func shutTLS(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		_ = tc.CloseWrite()
	}
}

// linger shuts raw's sending side and reads and discards its input
// until the client closes its side, LingerTimeout passes, LingerMaxBytes
// have been read, or a read fails, which a Close of raw from another
// goroutine (a server's Close) makes happen at once. raw is the
// connection below any TLS, which must have sent its close_notify
// first (shutTLS). It does not close raw.
func linger(raw net.Conn) {
	if cw, ok := raw.(closeWriter); ok {
		if err := cw.CloseWrite(); err != nil {
			return // gone already
		}
	}
	if err := raw.SetReadDeadline(time.Now().Add(LingerTimeout)); err != nil {
		return
	}
	buf := make([]byte, lingerBufSize)
	for read := 0; read < LingerMaxBytes; {
		n, err := raw.Read(buf)
		read += n
		if err != nil {
			return
		}
	}
}
