package node

import (
	"fmt"
	"net/http"
)

// The cluster handshake proves the secret, not which member a peer is
// (raftpeer.go), so an attacker on the path can carry a connection meant
// for one member to another. Raft's replies name their sender; the body
// operations' replies (a body stream's answer, every cluster RPC reply)
// name it too, and a caller that meant member B refuses an answer from
// C as a failure of B: otherwise a delivery would list B as a replica it
// never reached, and acknowledge the message with one real copy fewer
// than W. The name travels inside the authenticated stream (sealed
// frames or TLS), where the relay can neither strip nor change it.
//
// A node of an older release names nobody; its answer is taken as it
// always was (see DESIGN.md, "Not yet").

// headerNode names the member that answers a cluster RPC.
const headerNode = "Powermail-Node"

// answerAs has every reply of h name the member id.
func answerAs(id string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(headerNode, id)
		h.ServeHTTP(w, r)
	})
}

// answeredAs checks that an answer meant to come from member want came
// from it: got is the name the answer carries ("" from an older
// release, taken at its word; want "" checks nothing).
func answeredAs(want, got string) error {
	if want == "" || got == "" || got == want {
		return nil
	}
	return fmt.Errorf("%w: asked %s, %q answered", ErrWrongPeer, want, got)
}
