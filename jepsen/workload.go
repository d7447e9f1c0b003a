package jepsen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"powermail/jepsen/check"
)

// Domain is the mail domain the workload creates its mailboxes in.
const Domain = "jepsen.test"

// WorkloadConfig tunes the mail workload. Negative client counts mean
// none; zero means the default.
type WorkloadConfig struct {
	Mailboxes   int // mailboxes box0..box{N-1}@jepsen.test
	Concurrency int // SMTP clients
	Readers     int // clients listing mailboxes through the admin API
	IMAPReaders int // clients reading mailboxes over IMAP (SELECT, UID FETCH); default 2
	FlagClients int // IMAP clients APPENDing and STOREing flags on shared messages; default 2
	POP3Clients int // POP3 clients doing RETR and DELE on the pop mailboxes; default 1
	DirClients  int // clients adding, removing and reading mailboxes and forwards; default 2
	// QueueClients deliver to forwards to another provider, through the
	// outbound queue to the Remote; default 1.
	QueueClients int
	// SelectReads makes flag reads re-SELECT instead of NOOP before
	// FETCH FLAGS. NOOP is what a real client does, but it hides a known
	// server bug (jepsen/RESULTS.md, bug 1); CI sets this until it is fixed.
	SelectReads bool
	Rate        float64       // target deliveries per second over all clients; 0: as fast as possible
	ReadEvery   time.Duration // pause between one reader's reads
	OpTimeout   time.Duration // deadline of one SMTP transaction or read
	Seed        int64
}

// Workload delivers unique, identifiable messages over SMTP through random
// nodes and reads the mailboxes back through the admin API, IMAP and POP3,
// changes flags over IMAP and writes the directory, recording every
// operation in a check.Recorder. Its mailboxes:
//
//   - box0..boxN-1: SMTP deliveries, admin and IMAP reads;
//   - pop0: SMTP deliveries, IMAP reads, and POP3 sessions that RETR every
//     message and DELE most of them;
//   - flags: IMAP APPENDs and flag STOREs and reads, IMAP reads.
//
// Every one of them is read through every node at the end.
//
// Delivery outcomes: a 250 to the final dot is ok; any reply code (4xx or
// 5xx) is fail; an error before the message text is sent is fail too (the
// server cannot have taken a message it never saw); a timeout or a lost
// connection while sending the text or waiting for the final reply is info.
// Every attempt carries its own Message-ID and is never retried, so a
// message appears at most once per mailbox.
type Workload struct {
	cfg   WorkloadConfig
	c     *Cluster
	rec   *check.Recorder
	boxes []string // SMTP recipients: boxN and popN
	pops  []string // POP3 maildrops
	flags string   // the flag workload's mailbox
	stats *Stats

	procs atomic.Int64 // next process number

	mu     sync.Mutex
	ids    map[string]string // body hash -> Message-ID found in that body
	hashes map[string]bool   // body hashes listed by final reads

	flagsW    *flagWork
	dirW      *dirWork
	forwarded []check.Op // acknowledged forward invocations (under mu)
}

// NewWorkload prepares a workload against c that records into rec.
func NewWorkload(c *Cluster, rec *check.Recorder, cfg WorkloadConfig) *Workload {
	if cfg.Mailboxes < 1 {
		cfg.Mailboxes = 5
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 8
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
		*v = max(*v, 0)
	}
	def(&cfg.Readers, 0)
	def(&cfg.IMAPReaders, 2)
	def(&cfg.FlagClients, 2)
	def(&cfg.POP3Clients, 1)
	def(&cfg.DirClients, 2)
	def(&cfg.QueueClients, 1)
	if cfg.ReadEvery == 0 {
		cfg.ReadEvery = 300 * time.Millisecond
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = 10 * time.Second
	}
	w := &Workload{cfg: cfg, c: c, rec: rec, stats: NewStats(), ids: map[string]string{}, hashes: map[string]bool{},
		flags: "flags@" + Domain}
	for i := range cfg.Mailboxes {
		w.boxes = append(w.boxes, fmt.Sprintf("box%d@%s", i, Domain))
	}
	if cfg.POP3Clients > 0 {
		w.pops = []string{"pop0@" + Domain}
		w.boxes = append(w.boxes, w.pops...)
	}
	w.flagsW = newFlagWork(w)
	w.dirW = newDirWork(w)
	return w
}

// Mailboxes returns every mailbox the workload stores mail in.
func (w *Workload) Mailboxes() []string { return append(slices.Clone(w.boxes), w.flags) }

// password is the password the workload gives a mailbox.
func password(addr string) string { return "jepsen-" + strings.SplitN(addr, "@", 2)[0] }

// Stats returns live operation counts.
func (w *Workload) Stats() *Stats { return w.stats }

// Setup creates the domain and the mailboxes (not part of the history). It
// retries until ctx ends; "already exists" is fine.
func (w *Workload) Setup(ctx context.Context) error {
	addr := w.c.Nodes()[0].Admin
	type mbox struct {
		Address  string `json:"address"`
		Password string `json:"password"`
	}
	var batch struct {
		Mailboxes []mbox `json:"mailboxes"`
	}
	for _, b := range w.Mailboxes() {
		batch.Mailboxes = append(batch.Mailboxes, mbox{b, password(b)})
	}
	steps := []struct {
		path string
		body any
	}{
		{"/v1/domains", map[string]string{"name": Domain}},
		{"/v1/mailboxes/batch", batch},
	}
	for _, s := range steps {
		err := w.c.waitUntil(ctx, 30*time.Second, func(ctx context.Context) error {
			err := w.c.Admin.Post(ctx, addr, s.path, s.body, nil)
			var he *HTTPError
			if errors.As(err, &he) && he.Status == 409 {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("setup %s: %w", s.path, err)
		}
	}
	if w.queueOn() {
		return w.setupForwards(ctx)
	}
	return nil
}

// Run drives every client until ctx ends, then waits for the operations
// in flight (each bounded by OpTimeout) to complete, so that none is left
// without a completion.
func (w *Workload) Run(ctx context.Context) {
	var wg sync.WaitGroup
	spawn := func(n int, f func(context.Context, int)) {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f(ctx, i)
			}()
		}
	}
	spawn(w.cfg.Concurrency, w.client)
	spawn(w.cfg.Readers, w.reader)
	spawn(w.cfg.IMAPReaders, w.imapReader)
	spawn(w.cfg.FlagClients, w.flagClient)
	spawn(w.cfg.POP3Clients, w.pop3Client)
	spawn(w.cfg.DirClients, w.dirClient)
	spawn(w.cfg.QueueClients, w.queueClient)
	wg.Wait()
}

func (w *Workload) newProcess() int { return int(w.procs.Add(1)) }

func (w *Workload) rng(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(w.cfg.Seed), stream))
}

// client delivers messages to one or two random mailboxes through random
// nodes, one at a time.
func (w *Workload) client(ctx context.Context, i int) {
	rng := w.rng(uint64(1000 + i))
	proc := w.newProcess()
	nodes := w.c.Nodes()
	var pause time.Duration
	if w.cfg.Rate > 0 {
		pause = time.Duration(float64(w.cfg.Concurrency) / w.cfg.Rate * float64(time.Second))
	}
	for seq := 1; ctx.Err() == nil; seq++ {
		n := nodes[rng.IntN(len(nodes))]
		to := []string{w.boxes[rng.IntN(len(w.boxes))]}
		if rng.IntN(4) == 0 && len(w.boxes) > 1 { // a quarter go to two mailboxes: one body, two entries
			for {
				b := w.boxes[rng.IntN(len(w.boxes))]
				if b != to[0] {
					to = append(to, b)
					break
				}
			}
		}
		msgID := fmt.Sprintf("<c%d.%d.s%d@jepsen.test>", i, seq, w.cfg.Seed)
		inv := check.Op{Process: proc, Type: check.Invoke, F: check.FDeliver, Key: to[0], Node: n.ID, MsgID: msgID}
		if len(to) > 1 {
			inv.To = to
		}
		typ := w.sendRecorded(n, inv, to, rng)
		if typ == check.Info {
			proc = w.newProcess() // the old op may still take effect
		}
		// Back off after a failure so a down node is not hammered; keep the
		// target rate otherwise (jittered, so clients do not march in step).
		wait := pause/2 + time.Duration(rng.Int64N(int64(pause)+1))
		if typ != check.OK {
			wait = max(wait, 100*time.Millisecond+time.Duration(rng.Int64N(int64(200*time.Millisecond))))
		}
		if wait > 0 {
			sleep(ctx, wait)
		}
	}
}

// sendRecorded records inv, sends a message with inv's Message-ID to
// rcpts through n, records the outcome and returns its type.
func (w *Workload) sendRecorded(n *Node, inv check.Op, rcpts []string, rng *rand.Rand) check.OpType {
	w.record(inv)
	body := message(rng, rcpts, inv.MsgID)
	cut := 0
	if rng.IntN(abortOneIn) == 0 {
		cut = 1 + rng.IntN(len(body)-1)
	}
	typ, errText := w.deliver(n, rcpts, inv.MsgID, body, cut)
	done := inv
	done.Type, done.Error = typ, errText
	w.record(done)
	return typ
}

// message builds an identifiable message: its Message-ID also appears in the
// body as "jepsen-token:", so a body can be matched to its delivery, and the
// rest of the body is a fixed line repeated, so a body that is not what was
// sent is caught. Most messages are small; one in twenty is 64-256 KiB,
// which the server streams in chunks.
func message(rng *rand.Rand, to []string, msgID string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: jepsen <client@jepsen-client.test>\r\nTo: %s\r\n", strings.Join(to, ", "))
	fmt.Fprintf(&b, "Subject: jepsen %s\r\nMessage-ID: %s\r\nDate: %s\r\n\r\n", msgID, msgID, time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "jepsen-token: %s\r\n", token(msgID))
	size := 200 + rng.IntN(2000)
	if rng.IntN(20) == 0 {
		size = 64<<10 + rng.IntN(192<<10)
	}
	for b.Len() < size {
		b.WriteString(fillerLine)
	}
	return b.Bytes()
}

// fillerLine fills every message body after its token line.
const fillerLine = "The quick brown fox jumps over the lazy dog, 0123456789 times.\r\n"

func token(msgID string) string { return strings.Trim(msgID, "<>") }

// abortOneIn: one delivery in this many hangs up part way through its
// message text, without the final dot.
const abortOneIn = 40

// errAborted marks a delivery the client cut off on purpose.
const errAborted = "aborted: the client hung up inside the message text"

// deliver runs one SMTP transaction and classifies its outcome. With cut
// > 0 the client sends only body[:cut] and hangs up: a message that never
// ended must never be stored (RFC 5321 §4.1.1.4: the data ends with the
// dot), so that is a definite fail, and the checker flags the message if
// any read lists it.
func (w *Workload) deliver(n *Node, to []string, msgID string, body []byte, cut int) (check.OpType, string) {
	deadline := time.Now().Add(w.cfg.OpTimeout)
	conn, err := net.DialTimeout("tcp", n.SMTP, min(w.cfg.OpTimeout, 3*time.Second))
	if err != nil {
		return check.Fail, "dial: " + err.Error()
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	// Until the message text is sent, nothing can have been stored: every
	// error is a fail.
	before := func(stage string, err error) (check.OpType, string) {
		return check.Fail, stage + ": " + err.Error()
	}
	c, err := smtp.NewClient(conn, n.ID+".jepsen.test")
	if err != nil {
		return before("greeting", err)
	}
	defer c.Close()
	if err := c.Hello("jepsen-client.test"); err != nil {
		return before("ehlo", err)
	}
	if err := c.Mail("client@jepsen-client.test"); err != nil {
		return before("mail", err)
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return before("rcpt "+r, err)
		}
	}
	// DATA by hand (net/smtp's Data writer hides the final reply's text).
	id, err := c.Text.Cmd("DATA")
	if err != nil {
		return before("data", err)
	}
	c.Text.StartResponse(id)
	_, _, err = c.Text.ReadResponse(354)
	c.Text.EndResponse(id)
	if err != nil {
		return before("data", err)
	}
	// From here the server may store the message: a reply code is
	// definite, anything else is indeterminate.
	after := func(stage string, err error) (check.OpType, string) {
		var te *textproto.Error
		if errors.As(err, &te) {
			return check.Fail, fmt.Sprintf("%s: %d %s", stage, te.Code, te.Msg)
		}
		return check.Info, stage + ": " + err.Error()
	}
	dw := c.Text.DotWriter()
	if cut > 0 {
		if _, err := dw.Write(body[:cut]); err != nil {
			return after("data text", err)
		}
		if err := c.Text.W.Flush(); err != nil {
			return after("data text", err)
		}
		conn.Close()
		return check.Fail, errAborted
	}
	if _, err := dw.Write(body); err != nil {
		dw.Close()
		return after("data text", err)
	}
	if err := dw.Close(); err != nil {
		return after("data end", err)
	}
	_, msg, err := c.Text.ReadResponse(250)
	if err != nil {
		return after("data reply", err)
	}
	c.Quit()
	if strings.Contains(msg, " of ") {
		// "(1 of 2 mailboxes)": some recipients were refused after DATA,
		// which this workload's mailboxes (no quota) should never cause.
		return check.OK, "partial: " + msg
	}
	return check.OK, ""
}

// reader reads random mailboxes through random nodes.
func (w *Workload) reader(ctx context.Context, i int) {
	rng := w.rng(uint64(2000 + i))
	nodes := w.c.Nodes()
	for ctx.Err() == nil {
		w.Read(ctx, nodes[rng.IntN(len(nodes))], w.boxes[rng.IntN(len(w.boxes))], false)
		sleep(ctx, w.cfg.ReadEvery/2+time.Duration(rng.Int64N(int64(w.cfg.ReadEvery)+1)))
	}
}

// finalReadFactor multiplies the operation timeout for final reads.
const finalReadFactor = 6

// Read lists a mailbox through one node and records a read op with the
// Message-ID of every UID. The listing is one admin request, which passes
// the node's read-index barrier: it is the mailbox as of one instant inside
// the op. Message-IDs come from the bodies (fetched once per body hash,
// checked against the hash); a body whose Message-ID and token disagree, or
// whose hash is wrong, is reported as "corrupt:<hash>", which set-full
// counts as unexpected. It returns the completion type.
func (w *Workload) Read(ctx context.Context, n *Node, mailbox string, final bool) check.OpType {
	inv := check.Op{Process: w.newProcess(), Type: check.Invoke, F: check.FRead, Key: mailbox, Node: n.ID, Final: final}
	w.record(inv)
	done := inv
	timeout := w.cfg.OpTimeout
	if final {
		// A final read fetches every body not yet seen, of mailboxes a
		// long run has filled: it is not one operation's worth of work.
		timeout *= finalReadFactor
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	msgs, err := w.list(ctx, n, mailbox)
	if err == nil {
		done.Messages, err = w.resolve(ctx, n, mailbox, msgs)
	}
	if err == nil && final {
		w.mu.Lock()
		for _, m := range msgs {
			w.hashes[m.Hash] = true
		}
		w.mu.Unlock()
	}
	switch {
	case err == nil:
		done.Type = check.OK
		if done.Messages == nil {
			done.Messages = []check.Message{}
		}
	case isReply(err), errors.Is(err, syscall.ECONNREFUSED):
		// The node answered, or was not there: a read has no effect anyway,
		// but only a definite answer is a fail.
		done.Type, done.Error = check.Fail, err.Error()
		done.Messages = nil
	default:
		done.Type, done.Error = check.Info, err.Error()
		done.Messages = nil
	}
	w.record(done)
	return done.Type
}

type indexEntry struct {
	UID  uint32 `json:"uid"`
	Hash string `json:"hash"`
}

// list returns the whole INBOX index. Pages past the first are only needed
// above 10000 messages; UIDs are assigned in commit order and this workload
// never removes a message, so later pages only add newer messages and the
// union is still the mailbox as of the last page's instant.
func (w *Workload) list(ctx context.Context, n *Node, mailbox string) ([]indexEntry, error) {
	var all []indexEntry
	var after uint32
	for {
		var page []indexEntry
		path := fmt.Sprintf("/v1/mailboxes/%s/messages?limit=10000&after=%d", mailbox, after)
		if err := w.c.Admin.Get(ctx, n.Admin, path, &page); err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 10000 {
			return all, nil
		}
		after = page[len(page)-1].UID
	}
}

func (w *Workload) resolve(ctx context.Context, n *Node, mailbox string, msgs []indexEntry) ([]check.Message, error) {
	out := make([]check.Message, 0, len(msgs))
	for _, m := range msgs {
		w.mu.Lock()
		id, ok := w.ids[m.Hash]
		w.mu.Unlock()
		if !ok {
			raw, err := w.c.Admin.Raw(ctx, n.Admin, fmt.Sprintf("/v1/mailboxes/%s/messages/%d/raw", mailbox, m.UID))
			if err != nil {
				return nil, fmt.Errorf("uid %d: %w", m.UID, err)
			}
			id = identify(raw, m.Hash)
			w.mu.Lock()
			w.ids[m.Hash] = id
			w.mu.Unlock()
		}
		out = append(out, check.Message{UID: m.UID, MsgID: id})
	}
	return out, nil
}

// identify returns the Message-ID of a stored body, or "corrupt:<hash>" if
// the body does not hash to its index entry or is not what was sent.
func identify(raw []byte, hash string) string {
	sum := sha256.Sum256(raw)
	if hex.EncodeToString(sum[:]) != hash {
		return "corrupt:" + hash
	}
	id, ok := content(raw)
	if !ok {
		return "corrupt:" + hash
	}
	return id
}

// content checks that raw (a stored message, headers the server added
// included) is a message the workload built: a Message-ID, a first body
// line with the matching token, then only whole filler lines. It returns
// the Message-ID and whether the body is intact.
func content(raw []byte) (string, bool) {
	msg, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return "", false
	}
	id := msg.Header.Get("Message-Id")
	body, err := io.ReadAll(msg.Body)
	if err != nil || id == "" {
		return id, false
	}
	first, rest, ok := bytes.Cut(body, []byte("\r\n"))
	if !ok || string(first) != "jepsen-token: "+token(id) || len(rest)%len(fillerLine) != 0 {
		return id, false
	}
	for i := 0; i < len(rest); i += len(fillerLine) {
		if string(rest[i:i+len(fillerLine)]) != fillerLine {
			return id, false
		}
	}
	return id, true
}

// FinalReads reads every mailbox through every node (Final), retrying each
// until it succeeds or ctx ends. It returns an error naming the reads that
// never succeeded.
func (w *Workload) FinalReads(ctx context.Context) error {
	var missing []string
	for _, n := range w.c.Nodes() {
		for _, mb := range w.Mailboxes() {
			for {
				if w.Read(ctx, n, mb, true) == check.OK {
					break
				}
				if sleep(ctx, 500*time.Millisecond) != nil {
					missing = append(missing, mb+" via "+n.ID)
					break
				}
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("final reads failed: %s", strings.Join(missing, ", "))
	}
	return nil
}

// Hashes returns the body hashes the final reads listed.
func (w *Workload) Hashes() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.hashes))
	for h := range w.hashes {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// Fetch reads one message's body through node n (the admin API's raw
// read, which passes the read barrier and reads the local replica first)
// and records a fetch op with the Message-ID found in it, or
// "corrupt:<hash>" if it is not the body that was stored. The nemesis
// calls it right after damaging n's replica of that body: n must notice
// and serve an intact copy from another replica.
func (w *Workload) Fetch(ctx context.Context, n *Node, mailbox string, uid uint32, hash string) {
	inv := check.Op{Process: w.newProcess(), Type: check.Invoke, F: check.FFetch, Key: mailbox, Node: n.ID}
	w.record(inv)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.OpTimeout)
	defer cancel()
	raw, err := w.c.Admin.Raw(ctx, n.Admin, fmt.Sprintf("/v1/mailboxes/%s/messages/%d/raw", mailbox, uid))
	done := inv
	switch {
	case err == nil:
		done.Type, done.MsgID = check.OK, identify(raw, hash)
	case isReply(err):
		done.Type, done.Error = check.Fail, err.Error()
	default:
		done.Type, done.Error = check.Info, err.Error()
	}
	w.record(done)
}

func (w *Workload) record(op check.Op) {
	w.rec.Record(op)
	if op.Type != check.Invoke {
		w.stats.Add(op.F, op.Type)
	}
}

// Stats counts completed operations by f and type, for progress reports.
type Stats struct {
	mu     sync.Mutex
	counts map[string]map[check.OpType]int
}

// NewStats returns empty counts.
func NewStats() *Stats { return &Stats{counts: map[string]map[check.OpType]int{}} }

// Add counts one completion.
func (s *Stats) Add(f string, t check.OpType) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts[f] == nil {
		s.counts[f] = map[check.OpType]int{}
	}
	s.counts[f][t]++
}

// Get returns the count of completions of f with type t.
func (s *Stats) Get(f string, t check.OpType) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[f][t]
}
