package node

import (
	"net/http"
	"sync"

	"powermail/fsm"
)

// SettingsRequest is the body of POST /v1/settings: a partial update. A
// field left out (or null) keeps its current value; a caller that sends
// every field, as callers did before, sets them all.
type SettingsRequest struct {
	Replicas        *int `json:"replicas,omitempty"`
	WriteQuorum     *int `json:"write_quorum,omitempty"`
	CommandEncoding *int `json:"command_encoding,omitempty"`
	MaxVoters       *int `json:"max_voters,omitempty"`
	// Partial marks a request of a client that sends only the settings
	// it changes. This release reads every request alike; a node of an
	// older release refuses the field as unknown, where it would take
	// the settings left out as zero (the command encoding lowered, the
	// voter cap lifted), and the client then falls back to sending the
	// whole settings (cmd/powermail settings set).
	Partial bool `json:"partial,omitempty"`
}

// empty reports whether the request names no setting.
func (q SettingsRequest) empty() bool {
	return q.Replicas == nil && q.WriteQuorum == nil && q.CommandEncoding == nil && q.MaxVoters == nil
}

// Over returns s with the request's fields in place of its own.
func (q SettingsRequest) Over(s fsm.Settings) fsm.Settings {
	for _, f := range []struct {
		from *int
		to   *int
	}{{q.Replicas, &s.Replicas}, {q.WriteQuorum, &s.WriteQuorum}, {q.CommandEncoding, &s.CommandEncoding}, {q.MaxVoters, &s.MaxVoters}} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
	return s
}

// settingsRoute serves POST /v1/settings. The request's fields are laid
// over the current settings (read after the read barrier) and the whole
// result is proposed as one fsm.SettingsSet, whose apply checks it as a
// whole and is the same on every node: what is merged is decided here,
// once, and never by apply.
//
// Two updates through this node are merged one after the other (mu: each
// waits until the other is applied here). Two through different nodes
// within the few milliseconds between one's read and its commit can
// still lose one of the two changes. A compare-and-set (apply refusing a
// SettingsSet whose base is no longer current) would close that, but it
// changes apply behaviour, so it would need a command encoding of its
// own that every node reads before it may be written; for a change that
// operators make by hand and rarely, that is not worth it. Before
// partial updates the CLI's own read-modify-write had the same window
// plus two round trips.
func (n *Node) settingsRoute(route routeFunc) {
	var mu sync.Mutex
	route("POST /v1/settings", func(r *http.Request) (any, error) {
		var q SettingsRequest
		var out any
		err := decodeInto(r, &q, func() error {
			force, err := queryBool(r, "force")
			if err != nil {
				return err
			}
			if q.empty() {
				return &fsm.Error{Kind: fsm.ErrInvalid, Msg: "no setting to change: give replicas, write_quorum, command_encoding or max_voters"}
			}
			mu.Lock()
			defer mu.Unlock()
			if err := n.Barrier(r.Context()); err != nil {
				return err
			}
			cur, err := n.state.Settings()
			if err != nil {
				return err
			}
			c := fsm.SettingsSet{Settings: q.Over(cur)}
			warning, err := n.writeQuorumWarning(c.WriteQuorum)
			if err == nil && !force {
				err = n.checkEncodingRaise(r.Context(), c.CommandEncoding)
			}
			if err == nil {
				_, err = n.Apply(r.Context(), &c)
			}
			if err == nil {
				out = SettingsResult{Status: "ok", Settings: c.Settings, Warning: warning}
			}
			return err
		})
		return out, err
	})
}

// SettingsResult answers a settings change with the settings it left.
type SettingsResult struct {
	Status string `json:"status"`
	fsm.Settings
	Warning string `json:"warning,omitempty"`
}
