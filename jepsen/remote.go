package jepsen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-smtp"

	"powermail/jepsen/check"
)

// RemoteDomain is the other provider's domain: the workload's forwards
// point there, and every node relays it to the Remote.
const RemoteDomain = "remote.test"

// Remote is the other provider: an SMTP server on loopback that every
// node's outbound queue relays to (--relay-host). It records each
// message it is sent as an arrive op (check.FArrive) and answers like a
// real, imperfect server: now and then 451 (the message did not arrive,
// the queue must retry) and now and then it takes the message and drops
// the connection without a reply, a lost acknowledgement after which the
// queue must send again (the one case where a duplicate is allowed).
type Remote struct {
	Addr string

	rec   *check.Recorder
	procs atomic.Int64 // history processes, from remoteProcesses up
	srv   *smtp.Server
	ln    net.Listener

	mu       sync.Mutex
	rng      *rand.Rand
	tempFail float64        // share of messages answered 451
	drop     float64        // share taken and then cut off without a reply
	got      map[string]int // msgID + "\x00" + lower-case recipient -> arrivals
	messages int
}

// RemoteConfig tunes the Remote's misbehaviour; zero rates mean none.
type RemoteConfig struct {
	TempFail float64
	Drop     float64
	Seed     int64
}

// maxRemoteMessage bounds what the Remote reads; the workload's largest
// message is 256 KiB plus headers.
const maxRemoteMessage = 4 << 20

// remoteProcesses is the first history process of the Remote's
// receipts, far above the workload's clients.
const remoteProcesses = 1 << 30

// StartRemote listens on a free loopback port.
func StartRemote(rec *check.Recorder, cfg RemoteConfig) (*Remote, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	r := &Remote{Addr: ln.Addr().String(), rec: rec, ln: ln,
		rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 77)), tempFail: cfg.TempFail, drop: cfg.Drop, got: map[string]int{}}
	r.srv = smtp.NewServer(r)
	r.srv.Domain = "mx." + RemoteDomain
	r.srv.MaxMessageBytes = maxRemoteMessage
	r.srv.MaxRecipients = 100
	r.procs.Store(remoteProcesses)
	go r.srv.Serve(ln)
	return r, nil
}

// Close stops the server.
func (r *Remote) Close() { r.srv.Close() }

// Arrived reports whether msgID reached rcpt at least once.
func (r *Remote) Arrived(msgID, rcpt string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[msgID+"\x00"+strings.ToLower(rcpt)] > 0
}

// Messages is the number of messages taken (answered or dropped).
func (r *Remote) Messages() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.messages
}

// NewSession implements smtp.Backend.
func (r *Remote) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &remoteSession{r: r, c: c}, nil
}

type remoteSession struct {
	r    *Remote
	c    *smtp.Conn
	from string
	to   []string
}

func (s *remoteSession) Reset()        { s.from, s.to = "", nil }
func (s *remoteSession) Logout() error { return nil }

func (s *remoteSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *remoteSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !strings.HasSuffix(strings.ToLower(to), "@"+RemoteDomain) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "not a " + RemoteDomain + " address"}
	}
	s.to = append(s.to, to)
	return nil
}

// Data records the message as an arrive op and answers it.
func (s *remoteSession) Data(body io.Reader) error {
	r := s.r
	inv, _ := r.rec.Record(check.Op{Process: int(r.procs.Add(1)), Type: check.Invoke, F: check.FArrive, Node: "remote"})
	raw, err := io.ReadAll(body)
	if err != nil { // too big, or the connection broke: nothing arrived
		done := inv
		done.Type, done.Error = check.Fail, "read: "+err.Error()
		r.rec.Record(done)
		return err
	}
	done := inv
	done.To, done.From = append([]string(nil), s.to...), s.from
	done.MsgID, done.Error = inspect(raw)
	r.mu.Lock()
	p := r.rng.Float64()
	if p >= r.tempFail {
		r.messages++
		for _, to := range s.to {
			r.got[done.MsgID+"\x00"+strings.ToLower(to)]++
		}
	}
	r.mu.Unlock()
	switch {
	case p < r.tempFail:
		done.Type = check.Fail
		r.rec.Record(done)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	case p < r.tempFail+r.drop:
		done.Type = check.Info
		r.rec.Record(done)
		s.c.Conn().Close()
		return errors.New("connection dropped before the reply")
	}
	done.Type = check.OK
	r.rec.Record(done)
	return nil
}

// inspect returns the Message-ID of a message the workload built
// (message()) and, if it is not intact, an error beginning "corrupt": the
// headers the client wrote, a Received: line added on the way, the token
// line naming the same Message-ID, and nothing but filler lines after it.
func inspect(raw []byte) (msgID, problem string) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", "corrupt: unparseable: " + err.Error()
	}
	msgID = m.Header.Get("Message-ID")
	switch {
	case msgID == "":
		return "", "corrupt: no Message-ID"
	case m.Header.Get("Subject") != "jepsen "+msgID:
		return msgID, "corrupt: Subject changed: " + m.Header.Get("Subject")
	case len(m.Header["Received"]) == 0:
		return msgID, "corrupt: no Received: line"
	}
	sc := bufio.NewScanner(m.Body)
	sc.Buffer(make([]byte, 4096), 64<<10)
	if !sc.Scan() || sc.Text() != "jepsen-token: "+token(msgID) {
		return msgID, "corrupt: token line missing or wrong"
	}
	filler := strings.TrimSuffix(fillerLine, "\r\n")
	for sc.Scan() {
		if sc.Text() != filler {
			return msgID, fmt.Sprintf("corrupt: body line %q", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return msgID, "corrupt: " + err.Error()
	}
	return msgID, ""
}
