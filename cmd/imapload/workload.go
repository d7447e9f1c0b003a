package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// hardGrace is how long after the deadline a command may still run before
// the workers close their connections.
const hardGrace = 20 * time.Second

// Workload presets (--mode) and the command names --mix accepts.
var (
	presets = map[string]string{
		"mixed":  "select=5,fetchhdr=30,fetchbody=25,store=15,search=15,append=10",
		"fetch":  "fetchhdr=1,fetchbody=1",
		"search": "search=1",
		"pop3":   "retr=1",
	}
	imapOps = []string{"select", "fetchhdr", "fetchbody", "store", "search", "append", "noop"}
	pop3Ops = []string{"stat", "list", "uidl", "top", "retr", "noop"}
)

type mixEntry struct {
	op          string
	weight, cum int
}

// parseMix reads "op=weight,op=weight"; a bare "op" weighs 1 and entries
// of weight 0 are dropped.
func parseMix(s string, allowed []string) ([]mixEntry, error) {
	var out []mixEntry
	seen := map[string]bool{}
	sum := 0
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		op, ws, hasWeight := strings.Cut(part, "=")
		op = strings.ToLower(strings.TrimSpace(op))
		w := 1
		if hasWeight {
			if _, err := fmt.Sscan(strings.TrimSpace(ws), &w); err != nil || w < 0 {
				return nil, fmt.Errorf("--mix: bad weight in %q", part)
			}
		}
		if !contains(allowed, op) {
			return nil, fmt.Errorf("--mix: unknown command %q here (one of %s)", op, strings.Join(allowed, ", "))
		}
		if seen[op] {
			return nil, fmt.Errorf("--mix: %q given twice", op)
		}
		seen[op] = true
		if w == 0 {
			continue
		}
		sum += w
		out = append(out, mixEntry{op: op, weight: w, cum: sum})
	}
	if sum == 0 {
		return nil, errors.New("--mix: no command has a weight above 0")
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pick draws a command by weight.
func pick(mix []mixEntry, r *rand.Rand) string {
	x := r.IntN(mix[len(mix)-1].cum)
	for _, e := range mix {
		if x < e.cum {
			return e.op
		}
	}
	return mix[len(mix)-1].op
}

// phase is the measured window, set before the workers are released:
// ctx ends it, hard closes the connections a grace period later, and
// parent is ended only by an interrupt (whose errors are not counted).
type phase struct{ parent, ctx, hard context.Context }

// worker is one session (reconnecting as needed) of the measured run.
type worker struct {
	id         int
	c          *config
	addr       string
	acct       account
	rec, setup *recorder
	cnt        *counters
	take       func() bool
	ph         *phase
	rng        *rand.Rand
	searchN    int
	appendN    int
	known      uint32 // messages in the mailbox as of the last SELECT
	cur        holder
}

// holder keeps the worker's current connection so that the hard stop can
// close it from another goroutine.
type holder struct {
	mu   sync.Mutex
	c    io.Closer
	dead bool
}

func (h *holder) set(c io.Closer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.c = c
	if h.dead && c != nil {
		c.Close()
	}
}

func (h *holder) kill() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dead = true
	if h.c != nil {
		h.c.Close()
	}
}

func (w *worker) record(name string, d time.Duration, err error) {
	if err != nil && w.ph.parent.Err() != nil {
		return // interrupted: the failure is ours
	}
	if err != nil {
		w.rec.fail(name, err)
		w.cnt.errs.Add(1)
		return
	}
	w.rec.ok(name, d)
	w.cnt.ok.Add(1)
}

// checkError is a failed check of a reply that was itself well-formed:
// the connection is still usable.
type checkError struct{ msg string }

func (e checkError) Error() string { return e.msg }

var errEmpty = checkError{"mailbox is empty"}

// broken reports whether err leaves the connection unusable (anything but
// a tagged NO/BAD or a failed check of a reply).
func broken(err error) bool {
	var ie *imap.Error
	var ce checkError
	return !errors.As(err, &ie) && !errors.As(err, &ce)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func dialIMAP(addr string, a account, plainOK bool) (*imapclient.Client, error) {
	host, _, _ := net.SplitHostPort(addr)
	opts := &imapclient.Options{
		Dialer: &net.Dialer{Timeout: 10 * time.Second},
		// A load generator for test servers: certificates are not checked.
		TLSConfig: &tls.Config{ServerName: host, InsecureSkipVerify: true},
	}
	var cl *imapclient.Client
	var err error
	if plainOK {
		cl, err = imapclient.DialInsecure(addr, opts)
	} else {
		cl, err = imapclient.DialStartTLS(addr, opts)
	}
	if err != nil {
		return nil, err
	}
	if err := cl.WaitGreeting(); err != nil {
		cl.Close()
		return nil, err
	}
	if err := cl.Login(a.user, a.pass).Wait(); err != nil {
		cl.Close()
		return nil, fmt.Errorf("login %s: %w", a.user, err)
	}
	return cl, nil
}

// connectIMAP logs in and selects the mailbox, recording LOGIN (connect,
// greeting, LOGIN) and SELECT in rec; nil if either failed.
func (w *worker) connectIMAP(rec *recorder, count bool) *imapclient.Client {
	note := func(name string, d time.Duration, err error) {
		if count {
			w.record(name, d, err)
		} else if err != nil {
			rec.fail(name, err)
		} else {
			rec.ok(name, d)
		}
	}
	t := time.Now()
	cl, err := dialIMAP(w.addr, w.acct, w.c.plainOK)
	note("LOGIN", time.Since(t), err)
	if err != nil {
		return nil
	}
	t = time.Now()
	data, err := cl.Select(w.c.mailbox, nil).Wait()
	note("SELECT", time.Since(t), err)
	if err != nil {
		cl.Close()
		return nil
	}
	w.known = data.NumMessages
	w.cur.set(cl)
	return cl
}

func (w *worker) runIMAP(setupCtx context.Context, ready *sync.WaitGroup, start <-chan struct{}) {
	w.rng = rand.New(rand.NewPCG(w.c.seed, uint64(w.id)+1))
	w.searchN = w.id
	cl := w.connectIMAP(w.setup, false)
	ready.Done()
	select {
	case <-start:
	case <-setupCtx.Done():
		return
	}
	ctx := w.ph.ctx
	defer context.AfterFunc(w.ph.hard, w.cur.kill)()
	defer func() {
		if cl != nil {
			cl.Logout().Wait()
			cl.Close()
		}
	}()
	for ctx.Err() == nil {
		if cl == nil {
			if cl = w.connectIMAP(w.rec, true); cl == nil {
				sleepCtx(ctx, 100*time.Millisecond)
				continue
			}
		}
		if !w.take() {
			return
		}
		name, d, err := w.imapOp(cl, pick(w.c.mix, w.rng))
		w.record(name, d, err)
		switch {
		case err == nil:
		case errors.Is(err, errEmpty):
			sleepCtx(ctx, 50*time.Millisecond)
		case broken(err):
			cl.Close()
			cl = nil
		}
	}
}

var searchKinds = []string{"FROM", "SUBJECT", "UNSEEN", "SINCE"}

// imapOp runs one command and returns its report name and latency.
func (w *worker) imapOp(cl *imapclient.Client, op string) (string, time.Duration, error) {
	// Messages are never expunged, so the larger of the SELECT's count
	// and the latest EXISTS is right. (imapclient updates Mailbox() only
	// after a SELECT's Wait has returned, so it can lag behind.)
	n := w.known
	if mb := cl.Mailbox(); mb != nil {
		n = max(n, mb.NumMessages)
	}
	randSeq := func() uint32 { return 1 + uint32(w.rng.IntN(int(n))) }
	switch op {
	case "select":
		t := time.Now()
		data, err := cl.Select(w.c.mailbox, nil).Wait()
		d := time.Since(t)
		if err == nil {
			w.known = data.NumMessages
		}
		return "SELECT", d, err
	case "noop":
		t := time.Now()
		err := cl.Noop().Wait()
		return "NOOP", time.Since(t), err
	case "fetchhdr":
		if n == 0 {
			return "FETCH_HDR", 0, errEmpty
		}
		r := uint32(w.c.fetchRange)
		first := uint32(1)
		if n > r {
			first = 1 + uint32(w.rng.IntN(int(n-r+1)))
		}
		last := min(n, first+r-1)
		opts := &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true,
			BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader,
				HeaderFields: []string{"FROM", "SUBJECT", "DATE"}, Peek: true}}}
		var set imap.SeqSet
		set.AddRange(first, last)
		t := time.Now()
		msgs, err := cl.Fetch(set, opts).Collect()
		d := time.Since(t)
		if err == nil {
			got := map[uint32]bool{}
			for _, m := range msgs {
				if len(m.BodySection) > 0 {
					got[m.SeqNum] = true
				}
			}
			if want := int(last - first + 1); len(got) < want {
				err = checkError{fmt.Sprintf("FETCH %d:%d returned headers of %d of %d messages", first, last, len(got), want)}
			}
		}
		return "FETCH_HDR", d, err
	case "fetchbody":
		if n == 0 {
			return "FETCH_BODY", 0, errEmpty
		}
		seq := randSeq()
		opts := &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
		t := time.Now()
		msgs, err := cl.Fetch(imap.SeqSetNum(seq), opts).Collect()
		d := time.Since(t)
		if err == nil {
			size := 0
			for _, m := range msgs {
				if m.SeqNum == seq {
					for _, b := range m.BodySection {
						size += len(b.Bytes)
					}
				}
			}
			if size == 0 {
				err = checkError{fmt.Sprintf("FETCH %d BODY.PEEK[] returned no body", seq)}
			}
		}
		return "FETCH_BODY", d, err
	case "store":
		if n == 0 {
			return "STORE", 0, errEmpty
		}
		flag := imap.FlagSeen
		if w.rng.IntN(10) < 3 {
			flag = imap.FlagFlagged
		}
		sf := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{flag}}
		if w.rng.IntN(2) == 0 {
			sf.Op = imap.StoreFlagsDel
		}
		t := time.Now()
		err := cl.Store(imap.SeqSetNum(randSeq()), sf, nil).Close()
		return "STORE", time.Since(t), err
	case "search":
		kind := searchKinds[w.searchN%len(searchKinds)]
		w.searchN++
		var cr imap.SearchCriteria
		switch kind {
		case "FROM":
			cr.Header = []imap.SearchCriteriaHeaderField{{Key: "From", Value: senderTerm(w.rng.IntN(numSenders))}}
		case "SUBJECT":
			cr.Header = []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: topics[w.rng.IntN(len(topics))]}}
		case "UNSEEN":
			cr.NotFlag = []imap.Flag{imap.FlagSeen}
		case "SINCE":
			cr.Since = time.Now().AddDate(0, 0, -30)
		}
		t := time.Now()
		_, err := cl.UIDSearch(&cr, nil).Wait()
		return "SEARCH_" + kind, time.Since(t), err
	case "append":
		w.appendN++
		msg := buildMessage(msgSpec{
			id:     fmt.Sprintf("run.%d.%d.%d", w.id, w.appendN, time.Now().UnixNano()),
			to:     w.acct.user,
			sender: w.rng.IntN(numSenders),
			topic:  w.rng.IntN(len(topics)),
			date:   time.Now(),
			size:   w.c.appendSize,
		}, w.rng)
		t := time.Now()
		err := appendMsg(cl, w.c.mailbox, msg, nil)
		return "APPEND", time.Since(t), err
	}
	return strings.ToUpper(op), 0, fmt.Errorf("no such IMAP command %q", op)
}

func appendMsg(cl *imapclient.Client, mailbox string, msg []byte, opts *imap.AppendOptions) error {
	cmd := cl.Append(mailbox, int64(len(msg)), opts)
	if _, err := cmd.Write(msg); err != nil {
		cmd.Close()
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}

// ---------------------------------------------------------------- prefill

// prefillResult describes the APPENDs that topped the mailboxes up.
type prefillResult struct {
	Target    int     `json:"target"`
	Users     int     `json:"users"`
	MinBefore int     `json:"min_before"`
	MaxBefore int     `json:"max_before"`
	Appended  int64   `json:"appended"`
	Bytes     int64   `json:"bytes"`
	Errors    int64   `json:"errors"`
	Sessions  int     `json:"sessions"`
	Seconds   float64 `json:"seconds"`
	Rate      float64 `json:"msgs_per_s"`
}

type chunk struct{ acct, from, to int }

const prefillChunk = 25

// prefill APPENDs messages until every account's mailbox holds c.prefill.
// The messages depend only on the seed, the user and their position.
func prefill(ctx context.Context, c *config) prefillResult {
	res := prefillResult{Target: c.prefill, Users: len(c.accounts), Sessions: c.prefillSessions, MinBefore: -1}
	var jobs []chunk
	for i, a := range c.accounts {
		have, err := countMessages(c.imapAddrs[i%len(c.imapAddrs)], a, c)
		if err != nil {
			fmt.Fprintf(os.Stderr, "prefill: %s: %v\n", a.user, err)
			res.Errors++
			continue
		}
		if res.MinBefore < 0 || have < res.MinBefore {
			res.MinBefore = have
		}
		res.MaxBefore = max(res.MaxBefore, have)
		for from := have; from < c.prefill; from += prefillChunk {
			jobs = append(jobs, chunk{i, from, min(from+prefillChunk, c.prefill)})
		}
	}
	res.MinBefore = max(res.MinBefore, 0)
	ch := make(chan chunk, len(jobs))
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	base := time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour)
	var appended, bytes, errs atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for k := 0; k < c.prefillSessions; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := c.imapAddrs[k%len(c.imapAddrs)]
			var cl *imapclient.Client
			cur := -1
			defer func() {
				if cl != nil {
					cl.Logout().Wait()
					cl.Close()
				}
			}()
			for j := range ch {
				for i := j.from; i < j.to && ctx.Err() == nil; i++ {
					spec, flags := prefillSpec(c, j.acct, i, base)
					msg := buildMessage(spec, rand.New(rand.NewPCG(c.seed, uint64(i))))
					for try := 0; try < 3; try++ {
						if cl == nil || cur != j.acct {
							if cl != nil {
								cl.Logout().Wait()
								cl.Close()
								cl = nil
							}
							var err error
							if cl, err = dialIMAP(addr, c.accounts[j.acct], c.plainOK); err != nil {
								prefillError(&errs, err)
								time.Sleep(200 * time.Millisecond)
								continue
							}
							cur = j.acct
						}
						err := appendMsg(cl, c.mailbox, msg, &imap.AppendOptions{Flags: flags, Time: spec.date})
						if err == nil {
							appended.Add(1)
							bytes.Add(int64(len(msg)))
							break
						}
						prefillError(&errs, err)
						if broken(err) {
							cl.Close()
							cl = nil
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(t0).Seconds()
	res.Appended, res.Bytes, res.Errors = appended.Load(), bytes.Load(), res.Errors+errs.Load()
	if res.Seconds > 0 {
		res.Rate = float64(res.Appended) / res.Seconds
	}
	return res
}

// prefillError counts an error and prints the first few.
func prefillError(errs *atomic.Int64, err error) {
	if errs.Add(1) <= 5 {
		fmt.Fprintln(os.Stderr, "prefill:", err)
	}
}

func countMessages(addr string, a account, c *config) (int, error) {
	cl, n, err := dialSelect(addr, a, c)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	cl.Logout().Wait()
	return int(n), nil
}

// dialSelect logs a in at addr and selects the mailbox; it returns the
// client (the caller closes it) and the number of messages.
func dialSelect(addr string, a account, c *config) (*imapclient.Client, uint32, error) {
	cl, err := dialIMAP(addr, a, c.plainOK)
	if err != nil {
		return nil, 0, err
	}
	data, err := cl.Select(c.mailbox, nil).Wait()
	if err != nil {
		cl.Close()
		return nil, 0, err
	}
	return cl, data.NumMessages, nil
}

// prefillSpec describes prefilled message i of account acct: dates spread
// over the year before base, 80% seen, 5% flagged.
func prefillSpec(c *config, acct, i int, base time.Time) (msgSpec, []imap.Flag) {
	r := rand.New(rand.NewPCG(c.seed^0x9e3779b97f4a7c15, uint64(i)))
	span := 365 * 24 * time.Hour
	s := msgSpec{
		id:     fmt.Sprintf("fill.%d.%d.%d", c.seed, acct, i),
		to:     c.accounts[acct].user,
		sender: r.IntN(numSenders),
		topic:  r.IntN(len(topics)),
		date:   base.Add(-span + time.Duration(int64(span)/int64(c.prefill)*int64(i))).Add(-time.Duration(r.IntN(3600)) * time.Second),
		size:   c.prefillSize,
	}
	if s.size == 0 {
		s.size = realisticSize(r)
	}
	var flags []imap.Flag
	if r.IntN(100) < 80 {
		flags = append(flags, imap.FlagSeen)
	}
	if r.IntN(100) < 5 {
		flags = append(flags, imap.FlagFlagged)
	}
	return s, flags
}

// realisticSize draws a message size: 61% 2-8 KiB (plain text), 30%
// 8-32 KiB (HTML-sized), 8% 32-128 KiB and 1% 128-256 KiB (attachments);
// the mean is about 17 KiB.
func realisticSize(r *rand.Rand) int {
	switch x := r.IntN(100); {
	case x < 61:
		return 2<<10 + r.IntN(6<<10)
	case x < 91:
		return 8<<10 + r.IntN(24<<10)
	case x < 99:
		return 32<<10 + r.IntN(96<<10)
	default:
		return 128<<10 + r.IntN(128<<10)
	}
}

// ------------------------------------------------------------- messages

const numSenders = 50

var (
	firstNames = []string{"anna", "ben", "clara", "david", "eva", "felix", "greta", "hugo", "ines", "jonas"}
	lastNames  = []string{"berg", "castro", "dubois", "eriksen", "fischer"}
	domains    = []string{"example.org", "example.net", "mail.test"}
	topics     = []string{"invoice", "meeting", "report", "release", "order", "travel", "newsletter", "security", "budget", "party"}
	words      = strings.Fields(`the a of to and in for on with about please find attached see below thanks regards
		project update schedule review draft final numbers team next week today tomorrow call notes agenda
		question answer customer account payment server cluster storage delivery quarter plan office`)
)

// senderTerm is what SEARCH FROM looks for: unique to sender j.
func senderTerm(j int) string {
	return firstNames[j%len(firstNames)] + "." + lastNames[j/len(firstNames)%len(lastNames)]
}

func title(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

type msgSpec struct {
	id            string // unique: becomes the Message-ID
	to            string
	sender, topic int
	date          time.Time
	size          int
}

// buildMessage renders an RFC 5322 message of about s.size bytes (within
// a line): a few trace and MIME headers, a text body of random words and,
// from 32 KiB on, a base64 attachment for most of the size.
func buildMessage(s msgSpec, r *rand.Rand) []byte {
	var b strings.Builder
	b.Grow(s.size + 256)
	dom := domains[s.sender%len(domains)]
	addr := senderTerm(s.sender) + "@" + dom
	first, last, _ := strings.Cut(senderTerm(s.sender), ".")
	date := s.date.Format(time.RFC1123Z)
	fmt.Fprintf(&b, "Return-Path: <%s>\r\n", addr)
	fmt.Fprintf(&b, "Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\r\n\tby mail.bench.test with ESMTPS id %x\r\n\tfor <%s>; %s\r\n",
		s.sender%4, dom, s.sender%4, dom, 10+s.sender, r.Uint64(), s.to, date)
	fmt.Fprintf(&b, "Date: %s\r\nFrom: \"%s %s\" <%s>\r\nTo: <%s>\r\n", date, title(first), title(last), addr, s.to)
	subj := topics[s.topic] + ": " + words[r.IntN(len(words))] + " " + words[r.IntN(len(words))]
	if r.IntN(4) == 0 {
		subj = "Re: " + subj
	}
	fmt.Fprintf(&b, "Subject: %s\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n", subj, s.id, dom)
	boundary := ""
	if s.size >= 32<<10 {
		boundary = fmt.Sprintf("=_b%x", r.Uint64())
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n", boundary, boundary)
	}
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
	textEnd := s.size - 2
	if boundary != "" {
		textEnd = b.Len() + 1500 + r.IntN(2000)
	}
	var line strings.Builder
	for b.Len() < textEnd {
		line.Reset()
		for line.Len() < 60 {
			if line.Len() > 0 {
				line.WriteByte(' ')
			}
			line.WriteString(words[r.IntN(len(words))])
		}
		left := textEnd - b.Len() - 2
		if left <= 0 {
			break
		}
		str := line.String()
		if len(str) > left {
			str = str[:left]
		}
		b.WriteString(str)
		b.WriteString("\r\n")
	}
	if boundary != "" {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: application/pdf; name=\"%s-%d.pdf\"\r\nContent-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\n",
			boundary, topics[s.topic], s.topic)
		closing := len(boundary) + 8
		const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
		var row [76]byte
		for b.Len()+closing+78 <= s.size {
			for k := range row {
				row[k] = b64[r.IntN(64)]
			}
			b.Write(row[:])
			b.WriteString("\r\n")
		}
		fmt.Fprintf(&b, "--%s--\r\n", boundary)
	}
	return []byte(b.String())
}
