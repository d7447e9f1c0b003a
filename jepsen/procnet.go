package jepsen

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Which process dialed a TCP connection? The proxies need the source node
// of every peer connection to cut single links, and every node dials its
// peers from an ephemeral port on 127.0.0.1, so the address alone says
// nothing. Linux says more: /proc/net/tcp lists every socket with its
// local and remote address and its inode, and /proc/<pid>/fd links each
// descriptor of a process to "socket:[inode]". The dialer's socket is the
// one whose local address is the accepted connection's remote address and
// whose remote address is the proxy's listening address. This needs no
// privileges beyond reading the harness's own child processes.

// socketInode returns the inode of the TCP socket with the given local and
// remote addresses, from /proc/net/tcp and /proc/net/tcp6.
func socketInode(local, remote *net.TCPAddr) (uint64, error) {
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		ino, err := findInode(file, local, remote)
		if err != nil || ino != 0 {
			return ino, err
		}
	}
	return 0, fmt.Errorf("no socket %s -> %s in /proc/net/tcp", local, remote)
}

func findInode(file string, local, remote *net.TCPAddr) (uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		if os.IsNotExist(err) {
			return 0, nil
		}
		return 0, err
	}
	defer f.Close()
	v6 := strings.HasSuffix(file, "6")
	wantL, wantR := procAddr(local, v6), procAddr(remote, v6)
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[1] != wantL || fields[2] != wantR {
			continue
		}
		ino, err := strconv.ParseUint(fields[9], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: inode %q: %w", file, fields[9], err)
		}
		if ino != 0 { // 0: a socket in TIME_WAIT, owned by no one
			return ino, nil
		}
	}
	return 0, sc.Err()
}

// procAddr formats an address as /proc/net/tcp{,6} does: the address as
// 32-bit words in host (little-endian) byte order, in hex, then the port
// in hex. IPv4 addresses in tcp6 are IPv4-mapped.
func procAddr(a *net.TCPAddr, v6 bool) string {
	ip := a.IP.To4()
	if v6 || ip == nil {
		ip = a.IP.To16()
	}
	var b strings.Builder
	for i := 0; i+4 <= len(ip); i += 4 {
		fmt.Fprintf(&b, "%02X%02X%02X%02X", ip[i+3], ip[i+2], ip[i+1], ip[i])
	}
	fmt.Fprintf(&b, ":%04X", a.Port)
	return b.String()
}

// pidHolds reports whether process pid has a descriptor on socket inode.
func pidHolds(pid int, inode uint64) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	want := fmt.Sprintf("socket:[%d]", inode)
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == want {
			return true
		}
	}
	return false
}

// ownerOf returns the key of the process in pids that dialed conn (an
// accepted connection), or "" when none of them holds the dialing socket.
func ownerOf(conn net.Conn, pids map[int]string) (string, error) {
	remote, ok1 := conn.RemoteAddr().(*net.TCPAddr)
	local, ok2 := conn.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return "", fmt.Errorf("not a TCP connection: %v", conn.RemoteAddr())
	}
	ino, err := socketInode(remote, local)
	if err != nil {
		return "", err
	}
	for pid, id := range pids {
		if pidHolds(pid, ino) {
			return id, nil
		}
	}
	return "", nil
}
