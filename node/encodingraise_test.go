package node

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

// Raising the command encoding is refused while a member does not answer
// or reads only older encodings, unless forced; with every member able to
// read it, it goes through.
func TestEncodingRaiseWaitsForEveryMember(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 2, WriteQuorum: 2, CommandEncoding: fsm.EncodingJSON5}
	})
	l := c.leader(5 * time.Second)
	tok := string(testSecret)
	raise := func(enc int, query string) (int, string) {
		body := fmt.Sprintf(`{"replicas":2,"write_quorum":2,"command_encoding":%d,"max_voters":5}`, enc)
		return adminDo(t, l, "POST", "/v1/settings"+query, tok, body)
	}
	encoding := func() int {
		s, err := l.state.Settings()
		if err != nil {
			t.Fatal(err)
		}
		return s.CommandEncoding
	}

	// An encoding above what the members read names them, the node that
	// answers too, and does not send the operator to force a raise that
	// no member's apply takes.
	if code, body := raise(fsm.NewestEncoding+1, ""); code != 400 || !strings.Contains(body, "reads up to") ||
		!strings.Contains(body, l.ID()+" reads up to") || strings.Contains(body, "force") {
		t.Fatalf("raise past every release: %d %s", code, body)
	}
	var down *Node
	for _, n := range c.nodes {
		if n != l {
			down = n
			break
		}
	}
	down.Close()
	code, body := raise(fsm.EncodingJSON6, "")
	if code != 400 || !strings.Contains(body, down.ID()+" did not answer") {
		t.Fatalf("raise with %s down: %d %s", down.ID(), code, body)
	}
	if got := encoding(); got != fsm.EncodingJSON5 {
		t.Fatalf("a refused raise changed the encoding to %d", got)
	}
	if code, body := raise(fsm.EncodingJSON6, "?force=1"); code != 200 {
		t.Fatalf("forced raise: %d %s", code, body)
	}
	if got := encoding(); got != fsm.EncodingJSON6 {
		t.Fatalf("after the forced raise the encoding is %d", got)
	}
}

// With every member up and on this release the raise needs no force.
func TestEncodingRaiseWithEveryMemberUp(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 2, WriteQuorum: 2, CommandEncoding: fsm.EncodingJSON5}
	})
	l := c.leader(5 * time.Second)
	body := `{"replicas":2,"write_quorum":2,"command_encoding":6,"max_voters":5}`
	if code, out := adminDo(t, c.follower(), "POST", "/v1/settings", string(testSecret), body); code != 200 {
		t.Fatalf("raise: %d %s", code, out)
	}
	waitFor(t, 5*time.Second, "the raise applied", func() bool {
		s, err := l.state.Settings()
		return err == nil && s.CommandEncoding == fsm.EncodingJSON6
	})
}

// "force=false" (or "0") asks for no force: the raise is still refused
// while a member does not answer, and a force that is neither true nor
// false is bad input rather than a force.
func TestEncodingRaiseForceFalseIsNoForce(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 2, WriteQuorum: 2, CommandEncoding: fsm.EncodingJSON5}
	})
	l := c.leader(5 * time.Second)
	for _, n := range c.nodes {
		if n != l {
			n.Close()
			break
		}
	}
	body := fmt.Sprintf(`{"replicas":2,"write_quorum":2,"command_encoding":%d,"max_voters":5}`, fsm.EncodingJSON6)
	for query, want := range map[string]string{"?force=false": "did not answer", "?force=0": "did not answer", "?force=maybe": "force"} {
		if code, out := adminDo(t, l, "POST", "/v1/settings"+query, string(testSecret), body); code != 400 || !strings.Contains(out, want) {
			t.Errorf("raise%s with a member down: %d %s", query, code, out)
		}
	}
	if s, err := l.state.Settings(); err != nil || s.CommandEncoding != fsm.EncodingJSON5 {
		t.Fatalf("the encoding changed to %d (%v)", s.CommandEncoding, err)
	}
}
