package jepsen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"powermail/jepsen/check"
)

// imapReader reads random mailboxes through random nodes over IMAP: a new
// session each time (LOGIN, SELECT INBOX, UID FETCH 1:* of every
// Message-ID), recorded as a read with UIDVALIDITY and UIDNEXT, which the
// UID checker compares across readers and nodes.
func (w *Workload) imapReader(ctx context.Context, i int) {
	rng := w.rng(uint64(3000 + i))
	nodes := w.c.Nodes()
	boxes := w.Mailboxes()
	for ctx.Err() == nil {
		w.IMAPRead(ctx, nodes[rng.IntN(len(nodes))], boxes[rng.IntN(len(boxes))])
		sleep(ctx, w.cfg.ReadEvery/2+time.Duration(rng.Int64N(int64(w.cfg.ReadEvery)+1)))
	}
}

// IMAPRead lists a mailbox over IMAP through node n and records the read.
// The invoke is recorded before connecting: the listing is the mailbox as
// of the SELECT, an instant inside the op.
func (w *Workload) IMAPRead(ctx context.Context, n *Node, mailbox string) check.OpType {
	inv := check.Op{Process: w.newProcess(), Type: check.Invoke, F: check.FRead, Key: mailbox, Node: n.ID}
	w.record(inv)
	done := inv
	s, err := dialIMAP(n, mailbox, w.cfg.OpTimeout)
	if err == nil {
		done.UIDValidity, done.UIDNext, done.Messages, err = s.listing()
		if err == nil {
			s.Logout()
		} else {
			s.Close()
		}
	}
	if err != nil {
		done.UIDValidity, done.UIDNext, done.Messages = 0, 0, nil
		done.Type, done.Error = readOutcome(err), "imap: "+err.Error()
	} else {
		done.Type = check.OK
	}
	w.record(done)
	return done.Type
}

// ProbeIMAP reads one message's whole body over IMAP through node n and
// records a fetch op with the Message-ID found in it (corrupt:<hash> if the
// body is not what was sent). The nemesis calls it after damaging n's
// replica of that body.
func (w *Workload) ProbeIMAP(ctx context.Context, n *Node, mailbox string, uid uint32, hash string) {
	inv := check.Op{Process: w.newProcess(), Type: check.Invoke, F: check.FFetch, Key: mailbox, Node: n.ID}
	w.record(inv)
	done := inv
	s, err := dialIMAP(n, mailbox, w.cfg.OpTimeout)
	var raw []byte
	if err == nil {
		if _, err = s.c.Select("INBOX", nil).Wait(); err == nil {
			raw, err = s.fetchBody(uid)
		}
		s.Close()
	}
	if err != nil {
		done.Type, done.Error = readOutcome(err), "imap: "+err.Error()
	} else if id, ok := content(raw); ok {
		done.Type, done.MsgID = check.OK, id
	} else {
		done.Type, done.MsgID = check.OK, "corrupt:"+hash
	}
	w.record(done)
}

// The flag workload: every flag client works on a few shared messages in
// the flags mailbox, each APPENDed by a client (a deliver op, with
// APPENDUID) and then changed and read by all of them, through sessions
// on random nodes: UID STORE +FLAGS/-FLAGS/FLAGS (store-flags), and NOOP
// then UID FETCH FLAGS (read-flags). NOOP makes the session catch up with
// every change committed before it began, so the FETCH answers as of an
// instant inside the op. After flagOpsPerMsg operations a message is
// retired and a new one appended, so that each key's history stays short
// enough for porcupine.
const (
	flagActive    = 3  // messages worked on at once
	flagOpsPerMsg = 24 // operations on a message before it is retired
)

// flagChoices are the flags the workload sets and clears. \Deleted is
// left out: nobody expunges this mailbox, but a CLOSE would.
var flagChoices = []string{`\Seen`, `\Flagged`, `\Answered`, `$Jepsen`}

type flagMsg struct {
	msgID string
	uid   uint32
	ops   int
}

// flagWork is the state the flag clients share.
type flagWork struct {
	w  *Workload
	mu sync.Mutex
	// active messages; a nil slot is being appended by some client.
	active  [flagActive]*flagMsg
	filling [flagActive]bool
	seq     int
}

func newFlagWork(w *Workload) *flagWork { return &flagWork{w: w} }

// pick returns a message to work on, or the slot a caller must fill.
func (f *flagWork) pick(rng *rand.Rand) (*flagMsg, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := rng.IntN(flagActive)
	m := f.active[i]
	if m != nil && m.ops < flagOpsPerMsg {
		m.ops++
		return m, -1
	}
	if f.filling[i] {
		// Someone else is appending; work on any other live message.
		for _, o := range f.active {
			if o != nil && o.ops < flagOpsPerMsg {
				o.ops++
				return o, -1
			}
		}
		return nil, -1
	}
	f.active[i] = nil
	f.filling[i] = true
	return nil, i
}

func (f *flagWork) fill(i int, m *flagMsg) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active[i] = m
	f.filling[i] = false
}

func (f *flagWork) nextID(client int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return fmt.Sprintf("<f%d.%d.s%d@jepsen.test>", client, f.seq, f.w.cfg.Seed)
}

// flagClient runs flag operations until ctx ends. It keeps one session
// per node, opened when first needed and dropped after any error.
func (w *Workload) flagClient(ctx context.Context, i int) {
	rng := w.rng(uint64(4000 + i))
	nodes := w.c.Nodes()
	sessions := map[string]*imapConn{}
	defer func() {
		for _, s := range sessions {
			s.Logout()
		}
	}()
	session := func(n *Node) (*imapConn, error) {
		if s := sessions[n.ID]; s != nil {
			return s, nil
		}
		s, err := dialIMAP(n, w.flags, w.cfg.OpTimeout)
		if err != nil {
			return nil, err
		}
		s.deadline(w.cfg.OpTimeout)
		if _, err := s.c.Select("INBOX", nil).Wait(); err != nil {
			s.Close()
			return nil, err
		}
		sessions[n.ID] = s
		return s, nil
	}
	drop := func(n *Node, err error) {
		if s := sessions[n.ID]; s != nil && err != nil && !imapNo(err) {
			s.Close()
			delete(sessions, n.ID)
		}
	}
	for ctx.Err() == nil {
		n := nodes[rng.IntN(len(nodes))]
		m, slot := w.flagsW.pick(rng)
		switch {
		case slot >= 0:
			m = w.appendFlagMsg(ctx, rng, i, n, session, drop)
			w.flagsW.fill(slot, m)
		case m == nil:
		case rng.IntN(3) == 0:
			w.readFlags(n, m, session, drop)
		default:
			w.storeFlags(rng, n, m, session, drop)
		}
		sleep(ctx, 50*time.Millisecond+time.Duration(rng.Int64N(int64(150*time.Millisecond))))
	}
}

type sessionFunc func(*Node) (*imapConn, error)

// appendFlagMsg APPENDs a new message to the flags mailbox (a deliver op
// carrying its initial flags and the APPENDUID). It returns the message,
// or nil when the APPEND did not definitely succeed.
func (w *Workload) appendFlagMsg(ctx context.Context, rng *rand.Rand, client int, n *Node, session sessionFunc, drop func(*Node, error)) *flagMsg {
	msgID := w.flagsW.nextID(client)
	var initial []string
	if rng.IntN(2) == 0 {
		initial = []string{`\Draft`}
	}
	inv := check.Op{Process: w.newProcess(), Type: check.Invoke, F: check.FDeliver, Key: w.flags, Node: n.ID,
		MsgID: msgID, Flags: initial}
	w.record(inv)
	done := inv
	s, err := session(n)
	var data *imap.AppendData
	if err == nil {
		body := message(rng, []string{w.flags}, msgID)
		s.deadline(w.cfg.OpTimeout)
		var flags []imap.Flag
		for _, f := range initial {
			flags = append(flags, imap.Flag(f))
		}
		if cut := appendCut(rng, len(body)); cut > 0 {
			// Hang up inside the literal, as deliver does inside DATA:
			// a message that never arrived whole must not be stored.
			// Written past imapclient, which would hold a short write
			// in its buffer: the session is dropped anyway.
			fmt.Fprintf(s.conn, "cut APPEND INBOX {%d+}\r\n%s", len(body), body[:cut])
			s.conn.Close()
			drop(n, errors.New(errAborted))
			done.Type, done.Error = check.Fail, errAborted
			w.record(done)
			return nil
		}
		cmd := s.c.Append("INBOX", int64(len(body)), &imap.AppendOptions{Flags: flags})
		if _, err = cmd.Write(body); err == nil {
			err = cmd.Close()
		}
		if err == nil {
			data, err = cmd.Wait()
			drop(n, err)
		} else {
			// The literal did not go out whole. imapclient may never
			// complete such a command (a CI run waited on it for minutes),
			// so the session is abandoned instead of waited on.
			drop(n, errors.New("append abandoned: "+err.Error()))
		}
	} else {
		// Not connected (or not logged in): the APPEND was never sent.
		done.Type, done.Error = check.Fail, "imap: "+err.Error()
		w.record(done)
		return nil
	}
	switch {
	case err == nil:
		done.Type = check.OK
		if data != nil {
			done.UID, done.UIDValidity = uint32(data.UID), data.UIDValidity
		}
	case imapNo(err):
		// A NO may come after the server lost track of a commit: unknown.
		done.Type, done.Error = check.Info, "imap: "+err.Error()
	default:
		done.Type, done.Error = check.Info, "imap: "+err.Error()
	}
	w.record(done)
	if done.Type != check.OK || done.UID == 0 {
		return nil
	}
	return &flagMsg{msgID: msgID, uid: done.UID}
}

// appendCut is where an APPEND of a body of n octets hangs up, or 0: one
// in ten APPENDs of a body that fits a non-synchronizing literal
// (RFC 7888 LITERAL-: at most 4096 octets), which the client sends at
// once, without waiting for "+".
func appendCut(rng *rand.Rand, n int) int {
	if n > 4096 || n < 2 || rng.IntN(10) != 0 {
		return 0
	}
	return 1 + rng.IntN(n-1)
}

// storeFlags changes a message's flags with UID STORE.
func (w *Workload) storeFlags(rng *rand.Rand, n *Node, m *flagMsg, session sessionFunc, drop func(*Node, error)) {
	modes := []string{check.ModeAdd, check.ModeRemove, check.ModeSet}
	mode := modes[rng.IntN(len(modes))]
	var flags []string
	for _, f := range flagChoices {
		if rng.IntN(3) == 0 {
			flags = append(flags, f)
		}
	}
	if len(flags) == 0 && mode != check.ModeSet {
		flags = []string{flagChoices[rng.IntN(len(flagChoices))]}
	}
	inv := check.Op{Process: w.newProcess(), Type: check.Invoke, F: check.FStoreFlags, Key: w.flags, Node: n.ID,
		MsgID: m.msgID, Mode: mode, Flags: flags}
	w.record(inv)
	done := inv
	s, err := session(n)
	if err != nil {
		done.Type, done.Error = check.Fail, "imap: "+err.Error()
		w.record(done)
		return
	}
	op := map[string]imap.StoreFlagsOp{check.ModeAdd: imap.StoreFlagsAdd, check.ModeRemove: imap.StoreFlagsDel,
		check.ModeSet: imap.StoreFlagsSet}[mode]
	var fl []imap.Flag
	for _, f := range flags {
		fl = append(fl, imap.Flag(f))
	}
	// A UID the session has not been told about is silently skipped by
	// UID STORE (RFC 9051 section 6.4.9): NOOP first, so that the session
	// knows every message committed before it began, including one
	// appended through another node a moment ago.
	s.deadline(w.cfg.OpTimeout)
	if err = s.c.Noop().Wait(); err != nil {
		drop(n, err)
		done.Type, done.Error = check.Fail, "imap noop: "+err.Error() // the STORE was never sent
		w.record(done)
		return
	}
	var bufs []*imapclient.FetchMessageBuffer
	bufs, err = s.c.Store(imap.UIDSetNum(imap.UID(m.uid)), &imap.StoreFlags{Op: op, Flags: fl}, nil).Collect()
	drop(n, err)
	switch {
	case err == nil && !slices.ContainsFunc(bufs, func(b *imapclient.FetchMessageBuffer) bool { return uint32(b.UID) == m.uid }):
		// The session did not know the message, so nothing was stored.
		done.Type, done.Error = check.Fail, fmt.Sprintf("imap: UID %d not in the session's view after NOOP", m.uid)
	case err == nil:
		done.Type = check.OK
	default:
		// A NO may come after a commit whose outcome the server lost: unknown.
		done.Type, done.Error = check.Info, "imap: "+err.Error()
	}
	w.record(done)
}

// readFlags reads a message's flags: NOOP (catch up with every change
// committed before it began), then UID FETCH FLAGS; with SelectReads, a
// fresh SELECT instead of the NOOP.
func (w *Workload) readFlags(n *Node, m *flagMsg, session sessionFunc, drop func(*Node, error)) {
	inv := check.Op{Process: w.newProcess(), Type: check.Invoke, F: check.FReadFlags, Key: w.flags, Node: n.ID, MsgID: m.msgID}
	w.record(inv)
	done := inv
	s, err := session(n)
	var got []string
	if err == nil {
		s.deadline(w.cfg.OpTimeout)
		if w.cfg.SelectReads {
			_, err = s.c.Select("INBOX", nil).Wait()
		} else {
			err = s.c.Noop().Wait()
		}
		if err == nil {
			var bufs []*imapFetched
			bufs, err = fetchFlags(s, m.uid)
			if err == nil && len(bufs) != 1 {
				err = fmt.Errorf("uid fetch %d flags: %d answers", m.uid, len(bufs))
			}
			if err == nil {
				got = bufs[0].flags
			}
		}
		drop(n, err)
	}
	if err != nil {
		done.Type, done.Error = readOutcome(err), "imap: "+err.Error()
	} else {
		done.Type, done.Flags = check.OK, got
		if done.Flags == nil {
			done.Flags = []string{}
		}
	}
	w.record(done)
}

type imapFetched struct {
	uid   uint32
	flags []string
}

func fetchFlags(s *imapConn, uid uint32) ([]*imapFetched, error) {
	bufs, err := s.c.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		return nil, err
	}
	var out []*imapFetched
	for _, b := range bufs {
		if uint32(b.UID) != uid {
			continue
		}
		f := &imapFetched{uid: uid}
		for _, fl := range b.Flags {
			if !strings.EqualFold(string(fl), `\Recent`) {
				f.flags = append(f.flags, string(fl))
			}
		}
		slices.Sort(f.flags)
		out = append(out, f)
	}
	return out, nil
}
