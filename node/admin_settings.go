package node

import (
	"fmt"
	"net/http"
	"strings"
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

// fields names the settings the request gives, by the names
// fsm.SettingsSet.Fields takes.
func (q SettingsRequest) fields() []string {
	var out []string
	for _, f := range []struct {
		v    *int
		name string
	}{{q.Replicas, "replicas"}, {q.WriteQuorum, "write_quorum"}, {q.CommandEncoding, "command_encoding"}, {q.MaxVoters, "max_voters"}} {
		if f.v != nil {
			out = append(out, f.name)
		}
	}
	return out
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

// settingsRoute serves POST /v1/settings. From command encoding 11 the
// request's fields are proposed as one fsm.SettingsSet that names them
// (Fields): apply lays them over the settings as they are when it
// applies, checks the whole, and answers it, so two updates through two
// nodes within one commit's time both hold. Below 11 no release may
// write Fields: the request's fields are laid over the current settings
// (read after the read barrier) and the whole is proposed, and two
// updates through different nodes within the few milliseconds between
// one's read and its commit can lose one of the two changes. Either way
// two updates through this node go one after the other (mu), and the
// checks made here (the warning of R or W above the members, the encoding raise) use
// the settings read here.
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
			if n.afterSettingsRead != nil {
				n.afterSettingsRead()
			}
			c := fsm.SettingsSet{Settings: q.Over(cur)}
			if cur.CommandEncoding >= fsm.EncodingJSON11 {
				c.Fields = q.fields()
			}
			warning, err := n.settingsWarning(c.Replicas, c.WriteQuorum)
			if err == nil && !force {
				err = n.checkEncodingRaise(r.Context(), c.CommandEncoding)
			}
			var v any
			if err == nil {
				v, err = n.Apply(r.Context(), &c)
			}
			left := c.Settings
			if err == nil && c.Fields != nil {
				err = convert(v, &left) // the merge apply made
			}
			if err == nil {
				out = SettingsResult{Status: "ok", Settings: left, Warning: warning}
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

// settingsWarning says what settings of R and W cannot be met by the
// members there are. A write quorum above them makes every delivery wait
// for copies no node can make, refused (451 4.3.0) until enough nodes
// join; replicas above them leave every body short of R, so cluster
// status and storage verify exit 1, though mail is accepted. Both are
// allowed (a trial cluster may be told its R before it grows, and a new
// cluster starts with one member and W=2), but an operator must hear of
// it.
func (n *Node) settingsWarning(r, w int) (string, error) {
	members, err := n.state.Members()
	if err != nil {
		return "", err
	}
	var out []string
	if w > len(members) {
		out = append(out, fmt.Sprintf("write quorum %d is more than the %d members: deliveries are refused (451 4.3.0) until more nodes join", w, len(members)))
	}
	if r > len(members) {
		out = append(out, fmt.Sprintf("replicas %d is more than the %d members: every body stays short of R copies (cluster status and storage verify exit 1) until more nodes join", r, len(members)))
	}
	return strings.Join(out, "; "), nil
}
