package frontend

import (
	"net"
	"syscall"
)

// inputPending reports whether the client's octets wait unread in the
// kernel's buffer of c, which a close would answer with a reset. It
// peeks without blocking and without taking anything; a connection
// without a socket (a pipe in tests) has none.
func inputPending(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var pending bool
	var b [1]byte
	// Control, not Read: a read deadline already past (an expired
	// connection) would keep Read from calling the function at all.
	_ = rc.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		pending = err == nil && n > 0
	})
	return pending
}
