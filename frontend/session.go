package frontend

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-smtp"

	"powermail/node"
)

// session is one client connection's go-smtp Session. go-smtp calls its
// methods from the connection goroutine, except that Data runs on another
// goroutine during BDAT and Logout may run from Close; mu guards tx.
type session struct {
	srv    *SMTPServer
	conn   *smtp.Conn
	tc     *trackedConn // nil if the conn is not one of ours
	remote net.Addr
	ctx    context.Context // cancelled by Logout and by SMTPServer.Close
	cancel context.CancelFunc
	log    *slog.Logger

	user         string     // the authenticated mailbox (submission.go); set before MAIL
	userLogin    node.Login // user's login, which checkAccount checks
	authFailures int        // failed AUTH exchanges on this connection

	// ownRefused counts refused RCPTs (refusals.go) only when the conn
	// is not one of ours; see refusedRcpts.
	ownRefused atomic.Int64
	// farewell is the connection's last reply, repeated to any command
	// pipelined behind it (refusals.go).
	farewell *smtp.SMTPError

	mu sync.Mutex
	tx *txn // nil outside a transaction
}

var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.LMTPSession = (*session)(nil)
)

// Bounds on DSN parameters (RFC 3461 §4.4: ENVID at most 100 characters;
// §4.2: ORCPT at most 500).
const (
	maxEnvID = 100
	maxORCPT = 500
)

// txn is one mail transaction: MAIL, its accepted RCPTs, and the union of
// the mailboxes they resolved to.
type txn struct {
	id       string
	from     string
	helo     string
	tls      bool
	utf8     bool
	rcpts    []rcptEntry // accepted RCPTs in order, duplicates kept (LMTP needs them)
	boxes    []string    // union of rcpts' mailboxes, first-seen order
	boxIndex map[string]struct{}
	external []string // union of rcpts' external targets (outbound queue)
	listed   int      // mailboxes and targets the rcpts keep, duplicates counted (maxListedTargets)
	envID    string   // ENVID= (RFC 3461 §4.4)
	ret      string   // RET= (RFC 3461 §4.3)
	// expansions are the forward expansions the RCPTs share: a list
	// one RCPT landed on is not expanded again by the next (node.Resolve).
	// They go with the transaction (RSET, MAIL after DATA).
	expansions *node.Expansions
}

type rcptEntry struct {
	addr   string   // as the client sent it, <postmaster> as Postmaster
	sent   string   // as the client sent it: go-smtp's key for LMTP status
	boxes  []string // canonical mailboxes from Resolve
	ext    []string // external targets from Resolve
	notify []string // NOTIFY= keywords (RFC 3461 §4.1)
	orcpt  string   // ORCPT= as "type; address" (RFC 3461 §4.2)

	// full are the members Resolve left out as over their quota, and
	// fullMore the number of those it did not name (node
	// Resolution.Full): the sender's failure notice names them.
	full     []string
	fullMore int
}

// orcptOf is the RCPT's ORCPT as kept and reported, "type; address"
// (RFC 3464 §2.3.1), or "" without one.
func orcptOf(opts *smtp.RcptOptions) string {
	if opts == nil || opts.OriginalRecipient == "" {
		return ""
	}
	return strings.ToLower(string(opts.OriginalRecipientType)) + "; " + opts.OriginalRecipient
}

// addRecipient records an accepted RCPT. A mailbox reached through
// several addresses is stored once (Promise 5).
func (tx *txn) addRecipient(addr, sent string, res node.Resolution, opts *smtp.RcptOptions) {
	boxes := res.Mailboxes
	rc := rcptEntry{addr: addr, sent: sent, boxes: boxes, ext: res.External, full: res.Full, fullMore: res.FullMore}
	if opts != nil {
		for _, k := range opts.Notify {
			rc.notify = append(rc.notify, string(k))
		}
		rc.orcpt = orcptOf(opts)
	}
	tx.rcpts = append(tx.rcpts, rc)
	tx.listed += len(boxes) + len(res.External)
	for _, e := range res.External {
		if !slices.Contains(tx.external, e) {
			tx.external = append(tx.external, e)
		}
	}
	for _, b := range boxes {
		if _, dup := tx.boxIndex[b]; !dup {
			tx.boxIndex[b] = struct{}{}
			tx.boxes = append(tx.boxes, b)
		}
	}
}

// Mail starts a transaction (RFC 5321 §4.1.1.2).
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	err := s.mail(from, opts)
	s.srv.metrics.reply(cmdMail, err)
	return err
}

func (s *session) mail(from string, opts *smtp.MailOptions) error {
	if r := s.closing(); r != nil {
		return r
	}
	if s.srv.draining.Load() {
		return s.lastWord(replyShuttingDown())
	}
	// go-smtp checks SIZE= too; checking here keeps the promise local.
	if max := s.srv.cfg.MaxMessageBytes; opts != nil && opts.Size > max {
		return replyTooBig(max) // RFC 1870: declared size over the fixed maximum
	}
	if err := s.checkSpace(opts); err != nil {
		return err
	}
	if opts != nil && len(opts.EnvelopeID) > maxEnvID {
		return replyBadDSNParameter(fmt.Sprintf("ENVID longer than %d characters", maxEnvID))
	}
	utf8 := opts != nil && opts.UTF8
	switch p, why := checkSender(from, utf8); p {
	case addrSyntax:
		return replyBadSenderSyntax(why)
	case addrNonASCII:
		return replyNonASCIIAddress()
	}
	if err := s.checkSubmissionSender(from); err != nil {
		return err
	}
	if s.current() != nil {
		// RFC 5321 §4.1.1.2: no MAIL inside a transaction. go-smtp would
		// keep the old RCPTs while we started afresh; for LMTP it would
		// then answer 250 for recipients we never delivered to.
		return replyBadSequence("nested MAIL command")
	}
	_, isTLS := s.conn.TLSConnectionState()
	tx := &txn{
		id:       rand.Text(),
		from:     from,
		helo:     s.conn.Hostname(),
		tls:      isTLS,
		utf8:     utf8,
		boxIndex: make(map[string]struct{}),

		expansions: node.NewExpansions(),
	}
	if opts != nil {
		tx.envID, tx.ret = opts.EnvelopeID, string(opts.Return)
	}
	s.mu.Lock()
	s.tx = tx
	s.mu.Unlock()
	s.tc.setBusy(true)
	return nil
}

// checkSpace refuses a transaction this node has no disk space for
// before the client sends the body: 452 4.3.1 (RFC 1870 §6.1, RFC 3463
// X.3.1). Without SIZE= it still catches a node at its reserve. A node
// that can store nothing for another reason gets 451 4.3.0.
func (s *session) checkSpace(opts *smtp.MailOptions) *smtp.SMTPError {
	sc, ok := s.srv.d.(SpaceChecker)
	if !ok {
		return nil
	}
	var size int64
	if opts != nil {
		size = opts.Size
	}
	switch err := sc.CheckSpace(size); {
	case errors.Is(err, node.ErrInsufficientStorage):
		return replyInsufficientStorage()
	case errors.Is(err, node.ErrUnavailable):
		// The node can store no message now (its body store failed):
		// refuse before the client sends one.
		return replyUnavailable()
	}
	return nil
}

// Rcpt resolves one recipient against the directory (design brief, write
// path step 1) and refuses it here if it cannot be delivered: nothing is
// accepted first and bounced later (Promise 2).
func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	r := s.countRefusal(s.rcpt(to, opts))
	s.srv.metrics.reply(cmdRcpt, asError(r))
	return asError(r)
}

func (s *session) rcpt(to string, opts *smtp.RcptOptions) *smtp.SMTPError {
	if r := s.closing(); r != nil { // pipelined after the connection's last reply
		return r
	}
	tx, n := s.currentWithCount()
	if tx == nil {
		return replyBadSequence("need MAIL before RCPT") // RFC 5321 §4.1.4
	}
	if r := s.checkRefusalLimit(); r != nil {
		return r
	}
	if max := s.srv.cfg.MaxRecipients; n >= max {
		return replyTooManyRecipients(max)
	}
	if len(orcptOf(opts)) > maxORCPT {
		return replyBadDSNParameter(fmt.Sprintf("ORCPT longer than %d characters", maxORCPT))
	}
	// <postmaster> without a domain is Postmaster from here on (a trace
	// or DSN names it so, with a domain), but go-smtp keys its LMTP
	// reply by the address as sent.
	sent := to
	if strings.EqualFold(to, "postmaster") && s.srv.cfg.Postmaster != "" { // RFC 5321 §4.5.1: no domain
		to = s.srv.cfg.Postmaster
	}
	switch p, why := checkRecipient(to, tx.utf8); p {
	case addrSyntax:
		return replyBadRecipientSyntax(why)
	case addrNonASCII:
		return replyNonASCIIAddress()
	}
	if r := s.checkSRS(tx, to); r != nil {
		return r
	}
	if tx.expansions.Exhausted() {
		// Checked by node.Resolve too; a Deliverer need not be one.
		s.log.Info("smtp: recipient deferred, transaction's lookups used up", "rcpt", to, "reads", tx.expansions.Reads())
		return replyTooManyExpansions()
	}
	res, err := s.resolve(to, tx.expansions)
	if s.submissionExternal(err) {
		// Queued by its domain's A-labels: a client may name it in
		// U-labels under SMTPUTF8 (RFC 6531 §3.2), and the queue holds
		// domains in ASCII, as the directory does. Both spellings, and
		// spellings whose domains differ only in case, are then one
		// recipient.
		res, err = node.Resolution{External: []string{node.ASCIIAddress(to)}}, nil
	}
	if err != nil {
		r := replyForDirectoryError(err)
		s.logRefusedRcpt(to, r, err)
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tx != tx { // reset while resolving
		return replyBadSequence("transaction was reset")
	}
	if !tx.fits(res) {
		// The one commit this transaction makes could never hold it, and
		// a 451 after DATA would be repeated until the message bounced
		// for every recipient. RFC 5321 §4.5.3.1.10: 452, and the client
		// sends this recipient in another transaction.
		s.log.Info("smtp: recipient deferred, transaction full", "rcpt", to,
			"mailboxes", len(tx.boxes), "external", len(tx.external))
		return replyTooManyTargets()
	}
	tx.addRecipient(to, sent, res, opts)
	return nil
}

// maxListedTargets bounds the mailboxes and outside targets a
// transaction's RCPTs keep between them, each RCPT its own (rcptEntry,
// for the notices that name it), duplicates counted: ten RCPTs that each
// reach as many mailboxes as one delivery may name. Sharing expansions
// makes a RCPT of a large list cheap to look up, so without it 1,000
// RCPTs naming sub-addresses of a list of 10,000 would keep ten million
// names (some 160 MB, and as much again at DATA) for one transaction.
const maxListedTargets = 10 * node.MaxMessageMailboxes

// fits reports whether the transaction, with res added, stays within what
// one Deliver may commit (node.MaxMessageMailboxes,
// node.MaxMessageExternal), counting only mailboxes and targets it does
// not hold yet, and within what its RCPTs may keep (maxListedTargets).
func (tx *txn) fits(res node.Resolution) bool {
	boxes, external := len(tx.boxes), len(tx.external)
	for _, b := range res.Mailboxes {
		if _, dup := tx.boxIndex[b]; !dup {
			boxes++
		}
	}
	for _, e := range res.External {
		if !slices.Contains(tx.external, e) {
			external++
		}
	}
	return boxes <= node.MaxMessageMailboxes && external <= node.MaxMessageExternal &&
		tx.listed+len(res.Mailboxes)+len(res.External) <= maxListedTargets
}

// resolve calls Deliverer.Resolve under ResolveTimeout, with the
// transaction's expansions exp (nil outside one), and treats an empty
// answer as a backend error.
func (s *session) resolve(to string, exp *node.Expansions) (node.Resolution, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.srv.cfg.ResolveTimeout)
	defer cancel()
	if exp != nil {
		ctx = node.WithExpansions(ctx, exp)
	}
	res, err := s.srv.d.Resolve(ctx, to)
	if err == nil && len(res.Mailboxes) == 0 && len(res.External) == 0 {
		err = errNoMailboxes
	}
	return node.Resolution{Mailboxes: slices.Clone(res.Mailboxes), External: slices.Clone(res.External),
		Full: slices.Clone(res.Full), FullMore: res.FullMore}, err
}

func (s *session) logRefusedRcpt(to string, r *smtp.SMTPError, err error) {
	level := slog.LevelInfo
	if !isDirectoryError(err) {
		level = slog.LevelError // not a sentinel: a backend bug
	}
	s.log.Log(s.ctx, level, "smtp: recipient refused", "rcpt", to, "code", r.Code, "err", err)
}

// errNoMailboxes: Resolve returned neither mailboxes nor an error.
var errNoMailboxes = errors.New("frontend: Resolve returned no mailboxes")

// current returns the transaction in progress, or nil.
func (s *session) current() *txn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tx
}

// currentWithCount returns the transaction and its number of accepted
// RCPTs.
func (s *session) currentWithCount() (*txn, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tx == nil {
		return nil, 0
	}
	return s.tx, len(s.tx.rcpts)
}

// snapshot returns a copy of the transaction that later RCPTs cannot
// change, or nil. Data may run on go-smtp's BDAT goroutine.
func (s *session) snapshot() *txn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tx == nil {
		return nil
	}
	cp := *s.tx
	cp.rcpts = slices.Clip(cp.rcpts)
	cp.boxes = slices.Clone(cp.boxes)
	cp.external = slices.Clone(cp.external)
	cp.boxIndex = nil
	return &cp
}

// Reset ends the transaction (RSET, after DATA/BDAT LAST, EHLO again).
// During Shutdown, a connection is ended as soon as it is idle.
func (s *session) Reset() {
	s.mu.Lock()
	s.tx = nil
	s.mu.Unlock()
	s.tc.setBusy(false)
	if s.srv.draining.Load() {
		s.tc.expire()
	}
}

// Logout is called once when the session ends: when the connection
// ends, possibly from Close while Data runs, or at STARTTLS, which
// abandons any transaction under way without Reset (go-smtp resets after
// dropping the session). It cancels the session's context and marks the
// connection idle, or Shutdown would wait for a transaction that is gone
// and the lifetime would give it a transaction's grace.
func (s *session) Logout() error {
	s.cancel()
	s.tc.setBusy(false)
	if s.srv.draining.Load() {
		s.tc.expire()
	}
	return nil
}
