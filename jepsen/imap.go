package jepsen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"powermail/jepsen/check"
)

// imapConn is one logged-in IMAP session with a node. Every command runs
// under a deadline on the socket, so a paused or partitioned node makes it
// fail instead of hanging; after any error other than a tagged NO the
// session is unusable and must be closed.
type imapConn struct {
	node *Node
	conn net.Conn
	c    *imapclient.Client
}

// dialIMAP connects to n's IMAP port and logs in as mailbox.
func dialIMAP(n *Node, mailbox string, timeout time.Duration) (*imapConn, error) {
	conn, err := net.DialTimeout("tcp", n.IMAP, min(timeout, 3*time.Second))
	if err != nil {
		return nil, err
	}
	s := &imapConn{node: n, conn: conn, c: imapclient.New(conn, nil)}
	s.deadline(timeout)
	if err := s.c.WaitGreeting(); err != nil {
		s.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if err := s.c.Login(mailbox, password(mailbox)).Wait(); err != nil {
		s.Close()
		return nil, fmt.Errorf("login: %w", err)
	}
	return s, nil
}

// deadline bounds the next commands.
func (s *imapConn) deadline(d time.Duration) { s.conn.SetDeadline(time.Now().Add(d)) }

// Close drops the connection without LOGOUT.
func (s *imapConn) Close() { s.c.Close() }

// Logout ends the session politely (errors ignored).
func (s *imapConn) Logout() {
	s.c.Logout().Wait()
	s.c.Close()
}

// msgIDSection fetches the Message-ID header only, without setting \Seen.
var msgIDSection = &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader,
	HeaderFields: []string{"Message-ID"}, Peek: true}

// listing selects INBOX and returns its UIDVALIDITY, UIDNEXT and every
// message below that UIDNEXT with its Message-ID: the mailbox as of the
// SELECT. (Messages delivered after the SELECT may show up in the FETCH;
// they have UIDs at or above UIDNEXT and are left out.)
func (s *imapConn) listing() (uint32, uint32, []check.Message, error) {
	sel, err := s.c.Select("INBOX", nil).Wait()
	if err != nil {
		return 0, 0, nil, fmt.Errorf("select: %w", err)
	}
	msgs := []check.Message{}
	if sel.NumMessages == 0 {
		return sel.UIDValidity, uint32(sel.UIDNext), msgs, nil
	}
	var all imap.UIDSet
	all.AddRange(1, 0) // 1:*
	bufs, err := s.c.Fetch(all, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{msgIDSection}}).Collect()
	if err != nil {
		return 0, 0, nil, fmt.Errorf("uid fetch: %w", err)
	}
	for _, b := range bufs {
		if uint32(b.UID) >= uint32(sel.UIDNext) {
			continue
		}
		id := headerMsgID(b.FindBodySection(msgIDSection))
		if id == "" {
			id = fmt.Sprintf("corrupt:uid%d", b.UID)
		}
		msgs = append(msgs, check.Message{UID: uint32(b.UID), MsgID: id})
	}
	return sel.UIDValidity, uint32(sel.UIDNext), msgs, nil
}

// headerMsgID extracts the Message-ID from a header block.
func headerMsgID(raw []byte) string {
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(raw, "\r\n\r\n"...)))).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return ""
	}
	return strings.TrimSpace(h.Get("Message-Id"))
}

// fetchBody returns the whole body of the message with the given UID in
// the selected mailbox, without setting \Seen.
func (s *imapConn) fetchBody(uid uint32) ([]byte, error) {
	sec := &imap.FetchItemBodySection{Peek: true}
	bufs, err := s.c.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err != nil {
		return nil, err
	}
	for _, b := range bufs {
		if uint32(b.UID) == uid {
			if raw := b.FindBodySection(sec); raw != nil {
				return raw, nil
			}
		}
	}
	return nil, fmt.Errorf("uid fetch %d: no body returned", uid)
}

// imapNo reports whether err is a tagged NO or BAD from the server: the
// server answered, definitely.
func imapNo(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie)
}

// readOutcome classifies the error of a read op: a definite answer or a
// refused connection is a fail, anything else (timeouts, lost
// connections) info. Reads have no effect, so either is safe.
func readOutcome(err error) check.OpType {
	if imapNo(err) || errors.Is(err, syscall.ECONNREFUSED) || isReply(err) || errors.Is(err, errPOPErr) {
		return check.Fail
	}
	return check.Info
}
