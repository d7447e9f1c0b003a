package node

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// sink is a small SMTP server on loopback standing in for another
// provider's MX. Its answer to DATA is programmable.
type sink struct {
	addr string
	mu   sync.Mutex
	// mode decides the reply after DATA: "ok", "451", "550", "drop"
	// (read and record the message, then cut the connection without a
	// reply: a lost acknowledgement), "hold" (wait on release, then cut),
	// "wait" (wait on release, then take the message: a slow server),
	// "slow" (take each message after delay).
	mode    string
	delay   time.Duration // mode "slow"
	release chan struct{}
	got     []sunk
	tries   int
	dsn     []string // the DSN parameters of each MAIL and RCPT, as received
}

type sunk struct {
	from string
	to   []string
	data string
	utf8 bool // MAIL carried SMTPUTF8
}

func newSink(t testing.TB) *sink { return startSink(t, false) }

// startSink starts a sink, offering DSN (RFC 3461) when dsn is set.
func startSink(t testing.TB, dsn bool) *sink {
	return startSinkWith(t, func(srv *smtp.Server) { srv.EnableDSN = dsn }, nil)
}

// startSinkWith starts a sink whose server setup may set more, on a
// listener wrap may wrap.
func startSinkWith(t testing.TB, setup func(*smtp.Server), wrap func(net.Listener) net.Listener) *sink {
	return startSinkOn(t, "127.0.0.1:0", setup, wrap)
}

// startSinkOn is startSinkWith listening on addr: a test that kept a port
// closed (connections refused) opens the server there later.
func startSinkOn(t testing.TB, addr string, setup func(*smtp.Server), wrap func(net.Listener) net.Listener) *sink {
	s := &sink{mode: "ok", release: make(chan struct{})}
	srv := smtp.NewServer(s)
	srv.Domain = "sink.test"
	srv.AllowInsecureAuth = true
	setup(srv)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *sink) set(mode string) { s.mu.Lock(); s.mode = mode; s.mu.Unlock() }

func (s *sink) messages() []sunk {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sunk(nil), s.got...)
}

func (s *sink) NewSession(c *smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s, c: c}, nil }

type sinkSession struct {
	s    *sink
	c    *smtp.Conn
	from string
	to   []string
	utf8 bool
}

// errUndeclaredUTF8 is what a server offering SMTPUTF8 or not says to an
// address in UTF-8 whose MAIL did not declare it (RFC 6531 §3.2).
var errUndeclaredUTF8 = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 6, 7}, Message: "must declare SMTPUTF8"}

func (ss *sinkSession) Reset()        { ss.from, ss.to, ss.utf8 = "", nil, false }
func (ss *sinkSession) Logout() error { return nil }
func (ss *sinkSession) Mail(from string, opts *smtp.MailOptions) error {
	if !isASCII(from) && (opts == nil || !opts.UTF8) {
		return errUndeclaredUTF8
	}
	ss.from, ss.utf8 = from, opts != nil && opts.UTF8
	if opts != nil && (opts.EnvelopeID != "" || opts.Return != "") {
		ss.s.note(fmt.Sprintf("MAIL ENVID=%s RET=%s", opts.EnvelopeID, opts.Return))
	}
	return nil
}
func (ss *sinkSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if !isASCII(to) && !ss.utf8 {
		return errUndeclaredUTF8
	}
	ss.to = append(ss.to, to)
	if opts != nil && (len(opts.Notify) > 0 || opts.OriginalRecipient != "") {
		ss.s.note(fmt.Sprintf("RCPT %s NOTIFY=%v ORCPT=%s;%s", to, opts.Notify, opts.OriginalRecipientType, opts.OriginalRecipient))
	}
	return nil
}

func (s *sink) note(line string) { s.mu.Lock(); s.dsn = append(s.dsn, line); s.mu.Unlock() }

func (s *sink) dsnParams() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.dsn...)
}

func (ss *sinkSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	s := ss.s
	s.mu.Lock()
	s.tries++
	mode := s.mode
	s.mu.Unlock()
	if err != nil {
		return err
	}
	switch mode {
	case "451":
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	case "550":
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	case "hold":
		<-s.release
		ss.c.Conn().Close()
		return errors.New("held")
	case "wait":
		<-s.release
	case "slow":
		time.Sleep(s.delay)
	}
	s.mu.Lock()
	s.got = append(s.got, sunk{from: ss.from, to: ss.to, data: string(data), utf8: ss.utf8})
	s.mu.Unlock()
	if mode == "drop" {
		ss.c.Conn().Close()
		return errors.New("dropped")
	}
	return nil
}
