package frontend

import (
	"crypto/tls"
)

// lingerIfSending runs a lingering close (linger.go) when the session
// ends on the client's going over a limit, or octets of the client wait
// unread; Close has sent what was buffered (the BYE). It does not while
// the server stops: Shutdown's sessions end at a command's start, and
// Close cuts short those lingering (cancelLingering).
func (c *imapConn) lingerIfSending() {
	raw := c.Conn
	if tc, ok := raw.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if !c.lingerWanted.Load() && !inputPending(raw) || !c.srv.startLinger(c) {
		return
	}
	defer c.srv.endLinger(c)
	shutTLS(c.Conn)
	linger(raw)
}

// startLinger registers c's lingering close, unless the server is
// stopping.
func (s *IMAPServer) startLinger(c *imapConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping() {
		return false
	}
	s.lingering[c] = struct{}{}
	return true
}

func (s *IMAPServer) endLinger(c *imapConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.lingering, c)
}

// cancelLingering ends every lingering close at once: it closes the
// connection under it, which fails the read it waits in. The server is
// closed already, so no other starts (startLinger).
func (s *IMAPServer) cancelLingering() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.lingering {
		raw := c.Conn
		if tc, ok := raw.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		_ = raw.Close()
	}
}
