package jepsen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"powermail/jepsen/check"
)

// The POP3 workload. A session through a random node logs in to a pop
// mailbox, lists it with UIDL, RETRs every message (checking each body)
// and records all that as one read: the maildrop as of login, with the
// UIDs from UIDL ("<uidvalidity>.<uid>"). Then it DELEs most messages,
// each a pop-dele op of its own process, and QUITs: the deletions commit
// at QUIT, so every pop-dele completes with the QUIT's outcome (+OK: ok;
// -ERR or a lost connection: info). A message whose deletion was
// acknowledged must never be listed again by any read that began after
// the QUIT (set-full's stale rule).

// errPOPErr wraps every -ERR reply.
var errPOPErr = errors.New("pop3 -ERR")

// popMaxRetr bounds the messages one session retrieves; a bigger maildrop
// is read as far as that and recorded as info (not a whole listing).
const popMaxRetr = 200

type popConn struct {
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration // per command
}

func dialPOP(n *Node, timeout time.Duration) (*popConn, error) {
	conn, err := net.DialTimeout("tcp", n.POP3, min(timeout, 3*time.Second))
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(timeout))
	p := &popConn{conn: conn, r: bufio.NewReader(conn), timeout: timeout}
	if _, err := p.status(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	return p, nil
}

// status reads a +OK/-ERR line.
func (p *popConn) status() (string, error) {
	line, err := p.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if rest, ok := strings.CutPrefix(line, "+OK"); ok {
		return strings.TrimSpace(rest), nil
	}
	return "", fmt.Errorf("%w: %s", errPOPErr, line)
}

// cmd sends a command and reads its status line.
func (p *popConn) cmd(format string, args ...any) (string, error) {
	p.conn.SetDeadline(time.Now().Add(p.timeout))
	if _, err := fmt.Fprintf(p.conn, format+"\r\n", args...); err != nil {
		return "", err
	}
	return p.status()
}

// multi reads a dot-terminated multi-line reply, undoing dot-stuffing.
func (p *popConn) multi() ([]byte, error) {
	var b bytes.Buffer
	for {
		line, err := p.r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line == ".\r\n" || line == ".\n" {
			return b.Bytes(), nil
		}
		if strings.HasPrefix(line, ".") {
			line = line[1:]
		}
		b.WriteString(line)
	}
}

func (p *popConn) close() { p.conn.Close() }

// uidl parses UIDL lines "n <uidvalidity>.<uid>".
func parseUIDL(raw []byte) ([]popEntry, error) {
	var out []popEntry
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		num, uidl, ok := strings.Cut(line, " ")
		v, u, ok2 := strings.Cut(uidl, ".")
		n, err1 := strconv.Atoi(num)
		vv, err2 := strconv.ParseUint(v, 10, 32)
		uu, err3 := strconv.ParseUint(u, 10, 32)
		if !ok || !ok2 || err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("bad UIDL line %q", line)
		}
		out = append(out, popEntry{num: n, validity: uint32(vv), uid: uint32(uu)})
	}
	return out, nil
}

type popEntry struct {
	num           int
	validity, uid uint32
}

// pop3Client runs POP3 sessions until ctx ends.
func (w *Workload) pop3Client(ctx context.Context, i int) {
	if len(w.pops) == 0 {
		return
	}
	rng := w.rng(uint64(5000 + i))
	nodes := w.c.Nodes()
	for ctx.Err() == nil {
		w.popSession(nodes[rng.IntN(len(nodes))], w.pops[rng.IntN(len(w.pops))], func() bool { return rng.IntN(10) < 7 })
		sleep(ctx, 300*time.Millisecond+time.Duration(rng.Int64N(int64(400*time.Millisecond))))
	}
}

// popSession runs one session; dele says, per retrieved message, whether
// to delete it.
func (w *Workload) popSession(n *Node, mailbox string, dele func() bool) {
	inv := check.Op{Process: w.newProcess(), Type: check.Invoke, F: check.FRead, Key: mailbox, Node: n.ID}
	w.record(inv)
	read := inv
	p, entries, msgs, err := w.popList(n, mailbox)
	if err != nil {
		read.Type, read.Error = readOutcome(err), "pop3: "+err.Error()
		w.record(read)
		if p != nil {
			p.close() // no QUIT: nothing is deleted
		}
		return
	}
	read.Type, read.Messages = check.OK, msgs
	if len(entries) > 0 {
		read.UIDValidity = entries[0].validity
	}
	if len(entries) > popMaxRetr {
		read.Type, read.Error, read.Messages, read.UIDValidity = check.Info, "maildrop too big to read whole", nil, 0
	}
	w.record(read)

	// DELE, then QUIT commits them.
	var pending []check.Op
	for k, e := range entries[:min(len(entries), popMaxRetr)] {
		if !dele() {
			continue
		}
		op := check.Op{Process: w.newProcess(), Type: check.Invoke, F: check.FPopDele, Key: mailbox, Node: n.ID, MsgID: msgs[k].MsgID}
		w.record(op)
		if _, err := p.cmd("DELE %d", e.num); err != nil {
			op.Type, op.Error = check.Info, "pop3 dele: "+err.Error()
			if errors.Is(err, errPOPErr) {
				op.Type = check.Fail // refused before QUIT: it will not be deleted
			}
			w.record(op)
			if !errors.Is(err, errPOPErr) {
				w.completeAll(pending, check.Info, "pop3: connection lost before QUIT")
				p.close()
				return
			}
			continue
		}
		pending = append(pending, op)
	}
	_, err = p.cmd("QUIT")
	p.close()
	if err != nil {
		// -ERR at QUIT: the server may have removed some (or all); a lost
		// connection: unknown too.
		w.completeAll(pending, check.Info, "pop3 quit: "+err.Error())
		return
	}
	w.completeAll(pending, check.OK, "")
}

func (w *Workload) completeAll(ops []check.Op, t check.OpType, msg string) {
	for _, op := range ops {
		op.Type, op.Error = t, msg
		w.record(op)
	}
}

// popList logs in, lists the maildrop with UIDL and retrieves every
// message (up to popMaxRetr), returning the open connection.
func (w *Workload) popList(n *Node, mailbox string) (*popConn, []popEntry, []check.Message, error) {
	p, err := dialPOP(n, w.cfg.OpTimeout)
	if err != nil {
		return nil, nil, nil, err
	}
	if _, err := p.cmd("USER %s", mailbox); err != nil {
		return p, nil, nil, fmt.Errorf("user: %w", err)
	}
	if _, err := p.cmd("PASS %s", password(mailbox)); err != nil {
		return p, nil, nil, fmt.Errorf("pass: %w", err)
	}
	if _, err := p.cmd("UIDL"); err != nil {
		return p, nil, nil, fmt.Errorf("uidl: %w", err)
	}
	raw, err := p.multi()
	if err != nil {
		return p, nil, nil, fmt.Errorf("uidl: %w", err)
	}
	entries, err := parseUIDL(raw)
	if err != nil {
		return p, nil, nil, err
	}
	msgs := []check.Message{}
	for _, e := range entries[:min(len(entries), popMaxRetr)] {
		if _, err := p.cmd("RETR %d", e.num); err != nil {
			return p, nil, nil, fmt.Errorf("retr %d: %w", e.num, err)
		}
		body, err := p.multi()
		if err != nil {
			return p, nil, nil, fmt.Errorf("retr %d: %w", e.num, err)
		}
		id, ok := content(body)
		if !ok {
			id = fmt.Sprintf("corrupt:%s/uid%d", mailbox, e.uid)
		}
		msgs = append(msgs, check.Message{UID: e.uid, MsgID: id})
	}
	return p, entries, msgs, nil
}
