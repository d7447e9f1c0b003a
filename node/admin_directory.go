package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"powermail/fsm"
	"powermail/storage"
)

// MailboxView is a mailbox as the admin API shows it: never the hash.
type MailboxView struct {
	Address     string `json:"address"`
	QuotaBytes  int64  `json:"quota_bytes"`
	UsedBytes   int64  `json:"used_bytes"`
	Messages    int64  `json:"messages"`
	Disabled    bool   `json:"disabled"`
	HasPassword bool   `json:"has_password"`
	// Removing: a removal is emptying the mailbox (fsm.Mailbox.Removing)
	// and mail for it is refused meanwhile; a removal that stopped and
	// could not clear it leaves it set until `mailbox rm` is run again.
	Removing bool `json:"removing"`
	// HasForward: a forward of the same address takes its mail
	// (fsm.Mailbox.HasForward); the mailbox keeps a copy only if that
	// forward says keep_copy, which ForwardKeepsCopy tells.
	HasForward bool `json:"has_forward"`
	// ForwardKeepsCopy: the forward of HasForward keeps a copy here, so
	// the mailbox still gets all its mail.
	ForwardKeepsCopy bool `json:"forward_keeps_copy"`
	// ForwardTargetsGone: delivery reaches none of the forward's targets
	// any more (each was removed, or is itself a forward of none), so it
	// skips them all (fsm resolution): without keep_copy the address is
	// unknown and its mail refused; with it the mailbox alone gets it.
	// A node before it sends none: a client reads false, as before.
	ForwardTargetsGone bool `json:"forward_targets_gone"`
}

// viewMailbox is m as the admin API shows it. A mailbox with a forward
// of its own address has that forward read for its keep_copy: without
// it, "forwarded" could not tell a mailbox that gets no mail from one
// that keeps a copy of all of it. A forward gone meanwhile keeps none.
func (n *Node) viewMailbox(m fsm.Mailbox) MailboxView {
	v := MailboxView{Address: m.Address, QuotaBytes: m.QuotaBytes, UsedBytes: m.UsedBytes,
		Messages: m.Messages, Disabled: m.Disabled, HasPassword: m.PasswordHash != "", Removing: m.Removing,
		HasForward: m.HasForward}
	if m.HasForward {
		if f, err := n.state.Forward(m.Address); err == nil {
			v.ForwardKeepsCopy = f.KeepCopy
			v.ForwardTargetsGone = n.forwardReachesNone(m.Address)
		}
	}
	return v
}

// forwardReachesNone reports whether delivery to addr, a mailbox with a
// forward of its own address, reaches none of that forward's targets:
// it resolves addr as RCPT does (fsm.State.Resolve). Without keep_copy
// such a forward makes the address unknown (ErrNotFound); with it, the
// mailbox itself is all the resolution holds. A failed read tells
// nothing, and says false.
func (n *Node) forwardReachesNone(addr string) bool {
	res, err := n.state.Resolve(addr)
	if errors.Is(err, fsm.ErrNotFound) {
		return true
	}
	if err != nil || len(res.External) > 0 {
		return false
	}
	for _, mb := range res.Mailboxes {
		if mb != addr {
			return false
		}
	}
	return true
}

// ForwardView is a forward as the admin API shows it, with every field
// present: the stored record (fsm.Forward, whose encoding is part of the
// replicated state) leaves keep_copy out when it is false.
type ForwardView struct {
	Address      string   `json:"address"`
	Targets      []string `json:"targets"`
	KeepCopy     bool     `json:"keep_copy"`
	CreatedIndex uint64   `json:"created_index"`
}

// MailboxRequest creates a mailbox. Password is hashed (argon2id) by the
// node that receives it; PasswordHash takes an existing argon2id or bcrypt
// hash, for bulk imports.
type MailboxRequest struct {
	Address      string `json:"address"`
	Password     string `json:"password,omitempty"`
	PasswordHash string `json:"password_hash,omitempty"`
	QuotaBytes   int64  `json:"quota_bytes,omitempty"`
}

func (m MailboxRequest) toNew() (fsm.NewMailbox, error) {
	nm := fsm.NewMailbox{Address: m.Address, PasswordHash: m.PasswordHash, QuotaBytes: m.QuotaBytes}
	if m.Password != "" {
		if m.PasswordHash != "" {
			return nm, &fsm.Error{Kind: fsm.ErrInvalid, Msg: "give password or password_hash, not both"}
		}
		h, err := fsm.HashPassword(m.Password)
		if err != nil {
			return nm, err
		}
		nm.PasswordHash = h
	}
	// The state machine's own rule is older and looser (fsm.admitStored).
	if err := fsm.CheckPasswordHash(nm.PasswordHash); err != nil {
		return nm, &fsm.Error{Kind: fsm.ErrInvalid, Msg: fmt.Sprintf("mailbox %s: %v", m.Address, err)}
	}
	return nm, nil
}

type routeFunc func(pattern string, h func(r *http.Request) (any, error))

// knownDomain fails for a listing's domain filter that names no hosted
// domain: a typo must not look like a domain without mailboxes.
func (n *Node) knownDomain(d string) error {
	if d == "" {
		return nil
	}
	_, err := n.state.Domain(d)
	return err
}

func (n *Node) directoryRoutes(route routeFunc) {
	read := func(pattern string, h func(r *http.Request) (any, error)) {
		route(pattern, func(r *http.Request) (any, error) {
			if err := n.Barrier(r.Context()); err != nil {
				return nil, err
			}
			return h(r)
		})
	}
	n.domainRoutes(route, read)
	n.mailboxRoutes(route, read)
	n.mailboxUpdateRoutes(route)
	n.forwardRoutes(route, read)
	read("GET /v1/bodies/{hash}", func(r *http.Request) (any, error) {
		return n.bodyView(r.Context(), r.PathValue("hash"))
	})
	route("GET /v1/storage", func(r *http.Request) (any, error) { return n.bodies.Stats(r.Context()) })
	read("GET /v1/resolve/{address}", func(r *http.Request) (any, error) {
		return n.state.Resolve(r.PathValue("address"))
	})
	read("GET /v1/settings", func(r *http.Request) (any, error) { return n.state.Settings() })
	n.settingsRoute(route)
}

// applyFor proposes c on behalf of the request r.
func (n *Node) applyFor(r *http.Request, c fsm.Command) (any, error) { return n.Apply(r.Context(), c) }

func (n *Node) domainRoutes(route, read routeFunc) {
	read("GET /v1/domains", func(r *http.Request) (any, error) {
		lim, err := limit(r)
		if err != nil {
			return nil, err
		}
		return nonNil(n.state.Domains(r.URL.Query().Get("after"), lim))
	})
	route("POST /v1/domains", func(r *http.Request) (any, error) {
		var c fsm.DomainAdd
		return nil, decodeInto(r, &c, func() error { _, err := n.applyFor(r, &c); return err })
	})
	route("DELETE /v1/domains/{name}", func(r *http.Request) (any, error) {
		return n.applyFor(r, &fsm.DomainRemove{Name: r.PathValue("name")})
	})
}

func (n *Node) mailboxRoutes(route, read routeFunc) {
	read("GET /v1/mailboxes", func(r *http.Request) (any, error) {
		q := r.URL.Query()
		lim, err := limit(r)
		if err == nil {
			err = n.knownDomain(q.Get("domain"))
		}
		if err != nil {
			return nil, err
		}
		mbs, err := n.state.Mailboxes(q.Get("domain"), q.Get("after"), lim)
		return mapAll(mbs, n.viewMailbox), err
	})
	read("GET /v1/mailboxes/{address}", func(r *http.Request) (any, error) {
		m, err := n.state.Mailbox(r.PathValue("address"))
		if err != nil {
			return MailboxView{}, err
		}
		return n.viewMailbox(m), nil
	})
	route("POST /v1/mailboxes", func(r *http.Request) (any, error) {
		var req MailboxRequest
		return nil, decodeInto(r, &req, func() error {
			nm, err := req.toNew()
			if err == nil {
				_, err = n.applyFor(r, &fsm.MailboxAdd{Mailboxes: []fsm.NewMailbox{nm}, Distinct: n.encodingAtLeast(fsm.EncodingJSON4)})
			}
			return err
		})
	})
	route("POST /v1/mailboxes/batch", n.addMailboxBatch)
	route("DELETE /v1/mailboxes/{address}", func(r *http.Request) (any, error) {
		return n.RemoveMailbox(r.Context(), r.PathValue("address"))
	})
	read("GET /v1/mailboxes/{address}/messages", n.listMessages)
}

// addMailboxBatch creates the mailboxes of a BatchRequest in one entry.
func (n *Node) addMailboxBatch(r *http.Request) (any, error) {
	var req BatchRequest
	var out any
	err := decodeInto(r, &req, func() (err error) {
		// The state machine refuses such a batch too, but only after
		// every password in it was hashed here: a body of 64 MiB holds
		// hundreds of thousands, hours of argon2id for a refusal.
		if len(req.Mailboxes) == 0 || len(req.Mailboxes) > fsm.MaxMailboxBatch {
			return &fsm.Error{Kind: fsm.ErrInvalid, Msg: fmt.Sprintf("a batch holds 1 to %d mailboxes, not %d", fsm.MaxMailboxBatch, len(req.Mailboxes))}
		}
		rows, res := req.Mailboxes, ImportResult{}
		if req.SkipExisting {
			if rows, res.Skipped, err = n.skipExisting(r.Context(), rows); err != nil {
				return err
			}
			out = res
		}
		if len(rows) == 0 {
			return nil
		}
		c := &fsm.MailboxAdd{Mailboxes: make([]fsm.NewMailbox, len(rows)), Distinct: n.encodingAtLeast(fsm.EncodingJSON4)}
		for i, m := range rows {
			if c.Mailboxes[i], err = m.toNew(); err != nil {
				return err
			}
		}
		v, err := n.applyFor(r, c)
		if req.SkipExisting {
			res.Created = len(rows)
			out = res
		} else {
			out = v // before skip_existing the answer was the count alone
		}
		return err
	})
	return out, err
}

// listMessages is a page of one folder's messages, INBOX by default.
func (n *Node) listMessages(r *http.Request) (any, error) {
	q := r.URL.Query()
	folder := q.Get("folder")
	if folder == "" {
		folder = "INBOX"
	}
	lim, err := limit(r)
	if err != nil {
		return nil, err
	}
	// A UID that does not parse was read as 0, and the first page
	// came back for any later one asked: a pager following UIDs
	// would start over instead of hearing of its mistake.
	var after uint64
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 32); err != nil {
			return nil, &fsm.Error{Kind: fsm.ErrInvalid, Msg: fmt.Sprintf("after=%q: want a UID, 0 to %d", v, uint32(math.MaxUint32))}
		}
	}
	return nonNil(n.state.Messages(r.PathValue("address"), folder, uint32(after), lim))
}

// mailboxUpdateRoutes change one mailbox: password, quota, enabled.
func (n *Node) mailboxUpdateRoutes(route routeFunc) {
	route("POST /v1/mailboxes/{address}/password", func(r *http.Request) (any, error) {
		var req struct {
			Password string `json:"password"`
		}
		return nil, decodeInto(r, &req, func() error {
			h, err := fsm.HashPassword(req.Password)
			if err == nil {
				_, err = n.applyFor(r, &fsm.MailboxUpdate{Address: r.PathValue("address"), PasswordHash: &h})
			}
			return err
		})
	})
	route("POST /v1/mailboxes/{address}/quota", func(r *http.Request) (any, error) {
		var req struct {
			QuotaBytes *int64 `json:"quota_bytes"`
		}
		return nil, decodeInto(r, &req, func() error {
			if req.QuotaBytes == nil {
				return &fsm.Error{Kind: fsm.ErrInvalid, Msg: "quota_bytes is required (0: no quota)"}
			}
			_, err := n.applyFor(r, &fsm.MailboxUpdate{Address: r.PathValue("address"), QuotaBytes: req.QuotaBytes})
			return err
		})
	})
	route("POST /v1/mailboxes/{address}/enabled", func(r *http.Request) (any, error) {
		var req struct {
			Enabled *bool `json:"enabled"`
		}
		return nil, decodeInto(r, &req, func() error {
			if req.Enabled == nil {
				return &fsm.Error{Kind: fsm.ErrInvalid, Msg: "enabled is required (true or false)"}
			}
			disabled := !*req.Enabled
			_, err := n.applyFor(r, &fsm.MailboxUpdate{Address: r.PathValue("address"), Disabled: &disabled})
			return err
		})
	})
}

func (n *Node) forwardRoutes(route, read routeFunc) {
	read("GET /v1/forwards", func(r *http.Request) (any, error) {
		q := r.URL.Query()
		var fws []fsm.Forward
		lim, err := limit(r)
		if err != nil {
			return nil, err
		}
		if target := q.Get("target"); target != "" {
			// Every domain's forwards that name target, from after on
			// (a forward's address: they span domains). A node before
			// it ignored after and gave the first page again.
			fws, err = n.state.ForwardsToAfter(target, q.Get("after"), lim)
		} else if err = n.knownDomain(q.Get("domain")); err == nil {
			fws, err = n.state.Forwards(q.Get("domain"), q.Get("after"), lim)
		}
		return mapAll(fws, func(f fsm.Forward) ForwardView { return ForwardView(f) }), err
	})
	// One forward, for a client to compare with what it would add. A
	// node before it answers 405 (only DELETE took the path).
	read("GET /v1/forwards/{address}", func(r *http.Request) (any, error) {
		f, err := n.state.Forward(r.PathValue("address"))
		return ForwardView(f), err
	})
	route("POST /v1/forwards", func(r *http.Request) (any, error) {
		var c fsm.ForwardAdd
		var out any
		err := decodeInto(r, &c, func() error {
			c.Targets = distinctTargets(c.Targets)
			// The stricter loop check once every node applies it alike
			// (fsm.ForwardAdd.Fallbacks); what the client sent is not
			// asked.
			c.Fallbacks = n.encodingAtLeast(fsm.EncodingJSON7)
			_, err := n.applyFor(r, &c)
			out = forwardAdded(c)
			return err
		})
		return out, err
	})
	route("DELETE /v1/forwards/{address}", func(r *http.Request) (any, error) {
		return n.applyFor(r, &fsm.ForwardRemove{Address: r.PathValue("address")})
	})
}

// ForwardAdded answers the creation of a forward with what was stored:
// its targets each once, as distinctTargets leaves them.
type ForwardAdded struct {
	Status  string   `json:"status"`
	Address string   `json:"address"`
	Targets []string `json:"targets"`
}

func forwardAdded(c fsm.ForwardAdd) ForwardAdded {
	addr := c.Address
	if a, err := fsm.ParseForwardSource(addr); err == nil {
		addr = a.String()
	}
	return ForwardAdded{Status: "ok", Address: addr, Targets: c.Targets}
}

// distinctTargets keeps each of a forward's targets once, however it was
// spelt (the domain's case, a trailing dot, a quoted local part, the local
// part's case: fsm.Address.Key), in the form and at the place of its first
// mention. The state machine drops such repeats as well; doing it before
// proposing lets the reply (and so the CLI) say what is stored, and keeps
// a list whose repeats make it look longer than fsm.MaxForwardTargets from
// being refused. A target that does not parse is kept as given, for the
// state machine to refuse with its reason.
func distinctTargets(targets []string) []string {
	out := make([]string, 0, len(targets))
	seen := make(map[string]bool, len(targets))
	for _, t := range targets {
		a, err := fsm.ParseAddress(t)
		if err != nil {
			out = append(out, t)
			continue
		}
		if !seen[a.Key()] {
			seen[a.Key()] = true
			out = append(out, a.String())
		}
	}
	return out
}

// queryBool reads the query parameter name as a boolean, false when it
// is absent. Any other spelling than strconv.ParseBool's is refused: a
// flag taken as set whenever it is present would read "force=false" as
// force, and skip the check the caller meant to keep.
func queryBool(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &fsm.Error{Kind: fsm.ErrInvalid, Msg: fmt.Sprintf("%s=%q: want true or false (1 or 0)", name, v)}
	}
	return b, nil
}

// limit reads ?limit=, defaulting to 1000 when absent and capped at
// 10000. A value that is no positive number is refused: read as the
// default, "limit=0" (taken for "all") or a typo silently gave a page of
// 1000, which a caller could take for the whole listing.
func limit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 1000, nil
	}
	l, err := strconv.Atoi(v)
	if err != nil || l <= 0 {
		return 0, &fsm.Error{Kind: fsm.ErrInvalid, Msg: fmt.Sprintf("limit=%q: want a number from 1 (at most 10000 are returned)", v)}
	}
	return min(l, 10000), nil
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](v []T, err error) ([]T, error) {
	if v == nil {
		v = []T{}
	}
	return v, err
}

// BodyView is a body's directory record plus whether this node holds it.
type BodyView struct {
	fsm.Body
	Hash      string `json:"hash"`
	HeldHere  bool   `json:"held_here"`
	LocalSize int64  `json:"local_size,omitempty"`
}

func (n *Node) bodyView(ctx context.Context, hash string) (BodyView, error) {
	v := BodyView{Hash: hash}
	h, err := storage.ParseHash(hash)
	if err != nil {
		return v, &fsm.Error{Kind: fsm.ErrInvalid, Msg: err.Error()}
	}
	v.Body, err = n.state.Body(hash)
	if err != nil && !errors.Is(err, fsm.ErrNotFound) {
		return v, err
	}
	v.HeldHere, v.LocalSize, err = n.bodies.Has(ctx, h)
	if err == nil && !v.HeldHere && v.Refs == 0 && v.Replicas == nil {
		err = &fsm.Error{Kind: fsm.ErrNotFound, Msg: "body " + hash + " is neither referenced nor held here"}
	}
	return v, err
}

// mapAll returns f of each of in, as a non-nil slice (an empty listing
// is [] in JSON, not null).
func mapAll[T, V any](in []T, f func(T) V) []V {
	out := make([]V, 0, len(in))
	for _, x := range in {
		out = append(out, f(x))
	}
	return out
}
