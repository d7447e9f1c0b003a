package node

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"powermail/fsm"
)

// The admin API is HTTP/JSON on --admin. Every route but /healthz and
// /readyz needs "Authorization: Bearer <cluster secret>". Writes are
// committed through raft from whichever node receives them; reads pass
// the read-index barrier first, so any node answers as the leader would.

const maxAdminBody = 64 << 20

type adminServer struct {
	ln  net.Listener
	srv *http.Server
}

func startAdmin(n *Node) (*adminServer, error) {
	ln, err := net.Listen("tcp", n.cfg.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on admin address: %w", err)
	}
	// The cap goes under TLS: net/http must see the *tls.Conn itself, to
	// run the handshake and to answer plain HTTP with a clear 400.
	slots := &connSlots{max: n.cfg.AdminMaxConns, perIP: n.cfg.AdminMaxConnsPerIP}
	pools := newAdminPools(n.cfg.AdminMaxConns, n.cfg.AdminMaxConnsPerIP)
	ln = &capListener{Listener: ln, slots: slots, pool: n.adminPool(pools)}
	if n.cfg.AdminTLS != nil {
		ln = tls.NewListener(ln, n.cfg.AdminTLS)
	}
	a := &adminServer{ln: ln, srv: &http.Server{
		Handler:           n.requests.wrap(bodyDeadline(n.cfg.AdminReadTimeout, n.adminHandler())),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}}
	go a.srv.Serve(ln)
	return a, nil
}

func (a *adminServer) addr() string { return a.ln.Addr().String() }

func (a *adminServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if a.srv.Shutdown(ctx) != nil {
		a.srv.Close() // cancels the requests still running, which Close waits for
	}
}

// apiError is the body of every failed admin request.
type apiError struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

// ErrUnauthorized is returned for a missing or wrong admin token.
var ErrUnauthorized = errors.New("unauthorized")

// ErrTooLarge is a request body over the admin API's limit
// (maxAdminBody): 413, for the caller to send it in smaller parts.
var ErrTooLarge = errors.New("request body too large")

func (n *Node) adminHandler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, h func(r *http.Request) (any, error)) {
		mux.Handle(pattern, n.adminRoute(pattern, n.refuseIfRemoved(pattern, h)))
	}
	mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	mux.Handle("GET /readyz", readyz(&readyCheck{check: n.readiness, ctx: n.bgctx, fresh: readyFresh}, n.hasToken))
	mux.Handle("GET /metrics", n.requireToken(promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{})))
	// Profiles for operators chasing a slow node (token required).
	mux.Handle("GET /debug/pprof/", n.requireToken(http.HandlerFunc(pprof.Index)))
	mux.Handle("GET /debug/pprof/profile", n.requireToken(http.HandlerFunc(pprof.Profile)))
	route("GET /v1/cluster/status", func(r *http.Request) (any, error) { return n.Status(r.Context()) })
	route("POST /v1/cluster/join", func(r *http.Request) (any, error) {
		var req JoinRequest
		return nil, decodeInto(r, &req, func() error { return n.Join(r.Context(), req) })
	})
	route("POST /v1/cluster/remove", func(r *http.Request) (any, error) {
		var req struct {
			ID    string `json:"id"`
			Force bool   `json:"force,omitempty"`
		}
		return nil, decodeInto(r, &req, func() error {
			// A body without the id is the caller's mistake, not a
			// member that is missing (404).
			if req.ID == "" {
				return &fsm.Error{Kind: fsm.ErrInvalid, Msg: "id is required: the node to remove"}
			}
			return n.Remove(r.Context(), req.ID, req.Force)
		})
	})
	route("POST /v1/cluster/check-state", n.checkStateRoute)
	n.directoryRoutes(route)
	n.redundancyRoutes(mux, route)
	n.queueRoutes(route)
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /v1/mailboxes/{address}/messages/{uid}/raw": n.rawMessage,
		"GET /v1/mailboxes/{address}/export":             n.exportHandler,
		"POST /v1/mailboxes/{address}/restore":           n.restoreHandler,
	} {
		mux.Handle(pattern, n.requireToken(n.counted(pattern, n.refuseStreamIfRemoved(h))))
	}
	return n.closeForStrangers(mux)
}

// closeForStrangers ends the connection after every answer to a request
// without the token: the probes (which need none), a 401, and the 404 or
// 405 of a path or method no route takes. Otherwise anyone could keep a
// connection (and an admin slot) for the whole idle timeout with one
// request; a prober opens a new one each time at no real cost.
func (n *Node) closeForStrangers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.hasToken(r) {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// hasToken reports whether r carries the admin token, compared in
// constant time.
func (n *Node) hasToken(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(tok), n.cfg.Secret) == 1
}

// adminRoute wraps a handler with the token check, JSON encoding, error
// mapping and request metrics.
func (n *Node) adminRoute(name string, h func(r *http.Request) (any, error)) http.Handler {
	return n.requireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
		v, err := h(r)
		code := http.StatusOK
		if err != nil {
			code, v = errorStatus(err), apiError{Code: errorCode(err), Message: err.Error()}
		} else if v == nil {
			v = map[string]string{"status": "ok"}
		}
		n.metrics.adminRequests.WithLabelValues(name, fmt.Sprint(code)).Inc()
		writeJSON(w, code, v)
	}))
}

// counted counts a streaming route's requests by status, as adminRoute
// does for the JSON ones; one cut off mid-stream counts as "aborted".
func (n *Node) counted(name string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			code := fmt.Sprint(sw.code)
			v := recover()
			if v != nil {
				code = "aborted"
			}
			n.metrics.adminRequests.WithLabelValues(name, code).Inc()
			if v != nil {
				panic(v)
			}
		}()
		h(sw, r)
	})
}

// statusWriter records the status a handler answers with.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (n *Node) requireToken(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.hasToken(r) {
			// No body is read for a stranger: the connection closes after
			// the answer (closeForStrangers), and net/http's drain of the
			// body ends at once (it would otherwise wait for up to 256 KiB
			// of it).
			w.Header().Set("Connection", "close")
			http.NewResponseController(w).SetReadDeadline(time.Now())
			n.metrics.adminRequests.WithLabelValues("unauthorized", "401").Inc()
			writeJSON(w, http.StatusUnauthorized, apiError{Code: "unauthorized", Message: "missing or wrong admin token"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// decodeInto decodes the request's body, exactly one JSON value with no
// unknown field, into v, and then calls then. An empty body is refused:
// every route that decodes one needs its fields, and a zero value taken
// for a missing body would change things nobody asked to change.
func decodeInto(r *http.Request, v any, then func() error) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		return &fsm.Error{Kind: fsm.ErrInvalid, Msg: "empty request body: a JSON object is needed"}
	}
	if err == nil && dec.Decode(&json.RawMessage{}) != io.EOF {
		err = errors.New("data after the JSON value")
	}
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		return fmt.Errorf("%w: more than %d bytes (send it in smaller parts)", ErrTooLarge, tooLarge.Limit)
	}
	if err != nil {
		return &fsm.Error{Kind: fsm.ErrInvalid, Msg: "bad request body: " + err.Error()}
	}
	return then()
}

func errorCode(err error) string {
	if c := fsm.Code(err); c != "" {
		return c
	}
	switch { // the mail access errors (access.go), for the mailbox routes
	case errors.Is(err, ErrRemoved):
		return "removed"
	case errors.Is(err, ErrConfigurationChanged):
		return "unavailable" // a temporary failure: the request may be sent again
	case errors.Is(err, ErrInvalidArgument):
		return "invalid"
	case errors.Is(err, ErrOverQuota):
		return "over_quota"
	case errors.Is(err, ErrFolderFull):
		return "folder_full"
	case errors.Is(err, ErrNoFolder):
		return "not_found"
	case errors.Is(err, ErrTooLarge):
		return "too_large"
	}
	code := replyError(err).Code
	if code == "internal" && errorStatus(err) == http.StatusServiceUnavailable {
		// A temporary failure (ErrUnavailable: a read barrier without a
		// leader, too few replicas) is no internal error: a client that
		// goes by the code would give up instead of retrying.
		return "unavailable"
	}
	return code
}

// writeError answers a failed request with its status and apiError.
func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, errorStatus(err), apiError{Code: errorCode(err), Message: err.Error()})
}

func errorStatus(err error) int {
	switch {
	case errors.Is(err, fsm.ErrInvalid), errors.Is(err, fsm.ErrForwardLoop), errors.Is(err, fsm.ErrNotLocal),
		errors.Is(err, fsm.ErrOverQuota), errors.Is(err, ErrInvalidArgument), errors.Is(err, ErrOverQuota),
		errors.Is(err, fsm.ErrFolderFull), errors.Is(err, ErrFolderFull):
		return http.StatusBadRequest
	case errors.Is(err, fsm.ErrNotFound), errors.Is(err, fsm.ErrNoFolder), errors.Is(err, ErrNoFolder):
		return http.StatusNotFound
	case errors.Is(err, fsm.ErrExists), errors.Is(err, fsm.ErrNotEmpty), errors.Is(err, fsm.ErrLocked),
		errors.Is(err, fsm.ErrBeingRemoved):
		return http.StatusConflict
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrNotLeader), errors.Is(err, ErrIndeterminate), errors.Is(err, ErrRemoved),
		errors.Is(err, ErrUnavailable), errors.Is(err, ErrBodyUnavailable), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, ErrClosed), errors.Is(err, fsm.ErrClosed), errors.Is(err, ErrConfigurationChanged):
		// A node shutting down is a temporary failure: another node, or
		// this one restarted, will answer.
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// rawMessage streams one message's body (support and tests; IMAP is the
// user's way in). It passes the read barrier and reads from any replica.
func (n *Node) rawMessage(w http.ResponseWriter, r *http.Request) {
	if err := n.Barrier(r.Context()); err != nil {
		writeError(w, err)
		return
	}
	uid, err := strconv.ParseUint(r.PathValue("uid"), 10, 32)
	if err != nil || uid == 0 {
		writeError(w, &fsm.Error{Kind: fsm.ErrInvalid, Msg: "bad UID"})
		return
	}
	msgs, err := n.state.Messages(r.PathValue("address"), "INBOX", uint32(uid-1), 1)
	if err == nil && (len(msgs) == 0 || msgs[0].UID != uint32(uid)) {
		err = &fsm.Error{Kind: fsm.ErrNotFound, Msg: fmt.Sprintf("no message with UID %d", uid)}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	rd, err := n.openBody(r.Context(), msgs[0].Hash)
	if err != nil {
		writeError(w, err)
		return
	}
	defer rd.Close()
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Length", strconv.FormatInt(rd.Size(), 10))
	if _, err := CopyVerified(w, rd); err != nil {
		// The hash fails only at the end (a copy damaged behind its
		// chunk checks, a replica's stream): the last byte is held
		// back, and the response is cut short of its length.
		n.log.Warn("admin: raw message failed while streaming", "body", msgs[0].Hash, "err", err)
		panic(http.ErrAbortHandler)
	}
}
