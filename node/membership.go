package node

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"powermail/fsm"
)

// JoinRequest asks the cluster to take a node in: as a voter, or beyond
// the voter cap as a non-voter (voters.go).
type JoinRequest struct {
	ID          string `json:"id"`
	ClusterAddr string `json:"cluster_addr"`
	AdminAddr   string `json:"admin_addr"`
}

func (r JoinRequest) validate() error {
	if r.ID == "" || strings.ContainsAny(r.ID, " \t\n/") {
		return &fsm.Error{Kind: fsm.ErrInvalid, Msg: fmt.Sprintf("node id %q is empty or has spaces or slashes", r.ID)}
	}
	// Both addresses are checked here because nothing else would: raft
	// takes any string as a peer's address, and a mistyped one (a port of
	// 99999) would be a member the others dial in vain.
	if err := checkHostPort(r.ClusterAddr); err != nil {
		return &fsm.Error{Kind: fsm.ErrInvalid, Msg: fmt.Sprintf("cluster address %q: %v", r.ClusterAddr, err)}
	}
	if err := checkAdminAddr(r.AdminAddr); err != nil {
		return &fsm.Error{Kind: fsm.ErrInvalid, Msg: fmt.Sprintf("admin address %q: %v (HOST:PORT, or https://HOST:PORT)", r.AdminAddr, err)}
	}
	return nil
}

// checkHostPort accepts HOST:PORT with a host and a port from 1 to 65535.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("no host")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

// checkAdminAddr accepts what a node advertises as its admin address:
// HOST:PORT, or a URL (--admin-advertise, or https:// under admin TLS),
// where the port may be left to the scheme. Empty is fine: the node
// publishes its own once it runs.
func checkAdminAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if !strings.Contains(addr, "://") {
		return checkHostPort(addr)
	}
	u, err := url.Parse(addr)
	switch {
	case err != nil:
		return err
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme %q is not http or https", u.Scheme)
	case u.Hostname() == "":
		return errors.New("no host")
	case u.Port() != "":
		return checkHostPort(u.Host)
	}
	return nil
}

// Join adds a node through any node. It is idempotent: the same ID and
// address again is a no-op, and a changed address replaces the old one.
func (n *Node) Join(ctx context.Context, req JoinRequest) error {
	if err := req.validate(); err != nil {
		return err
	}
	body, _ := json.Marshal(req)
	return n.onLeader(ctx,
		func() error { return n.joinLocal(ctx, req) },
		func(addr string) error { return n.call(ctx, addr, "POST", "/rpc/join", body, nil) })
}

func (n *Node) joinLocal(ctx context.Context, req JoinRequest) error {
	if err := req.validate(); err != nil {
		return err
	}
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	// The servers the join replaces go first, each conditional on the
	// configuration it was decided on (removeserver.go), and only then
	// the member records of other IDs at the joiner's address: a join
	// refused on the way leaves the directory as it was.
	if err := n.replaceForJoin(ctx, req); err != nil {
		return err
	}
	if err := n.forgetAddressHolders(ctx, req); err != nil {
		return err
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	present := slices.ContainsFunc(cf.Configuration().Servers, func(s raft.Server) bool {
		return string(s.ID) == req.ID && string(s.Address) == req.ClusterAddr
	})
	if !present {
		if err := n.addJoiner(ctx, raft.ServerID(req.ID), raft.ServerAddress(req.ClusterAddr)); err != nil {
			return err
		}
	}
	if n.beforeJoinRecord != nil {
		n.beforeJoinRecord(req.ID)
	}
	// A removal of req.ID that lands after the check above must not be
	// followed by its record (putRecordIfMember): the join is then
	// undone, and is to be sent again.
	put, err := n.putRecordIfMember(ctx, fsm.Member{ID: req.ID, ClusterAddr: req.ClusterAddr, AdminAddr: req.AdminAddr})
	if err == nil && !put {
		err = fmt.Errorf("join %s: %w: it was removed again meanwhile", req.ID, ErrConfigurationChanged)
	}
	return err
}

// probeMember asks the node at addr for its status, for at most two
// seconds; ok is false when it did not answer.
func (n *Node) probeMember(ctx context.Context, addr raft.ServerAddress) (MemberStatus, bool) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var ms MemberStatus
	return ms, n.call(cctx, string(addr), "GET", "/rpc/stats", nil, &ms) == nil
}

// forgetAddressHolders removes the member records of other IDs at the
// joiner's cluster address: a node whose disk was wiped and that joins
// again under a new ID replaces the old one. Left in the directory, the
// old ID would look alive (liveness is polled by address), so the bodies
// listed on it would never be repaired, and placement could put two
// copies on one machine.
func (n *Node) forgetAddressHolders(ctx context.Context, req JoinRequest) error {
	members, err := n.state.Members()
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.ClusterAddr != req.ClusterAddr || m.ID == req.ID {
			continue
		}
		if err := n.removeRecordLocked(ctx, m.ID); err != nil {
			return fmt.Errorf("replace %s: %w", m.ID, err)
		}
		n.log.Info("node replaced by a new ID at its address", "old", m.ID, "new", req.ID, "addr", req.ClusterAddr)
		n.kickRepair()
	}
	return nil
}

// Remove takes a node out of the cluster through any node. Unless force
// is set, a voter is removed only if the voters that answer, without it,
// are a majority of the voters that stay: removing a live voter while
// another is down would leave a cluster that cannot commit (not even the
// removal's own completion) until the down one returns.
func (n *Node) Remove(ctx context.Context, id string, force bool) error {
	body, _ := json.Marshal(removeRequest{ID: id, Force: force})
	return n.onLeader(ctx,
		func() error { return n.removeLocal(ctx, id, force) },
		func(addr string) error { return n.call(ctx, addr, "POST", "/rpc/remove", body, nil) })
}

// removeRequest is the cluster RPC's removal.
type removeRequest struct {
	ID    string
	Force bool
}

// removalKeepsQuorum is the check Remove makes unless forced, on the
// configuration and the voters that answer now (quorumWithout). It is
// made again just before raft's change (removeServer).
func (n *Node) removalKeepsQuorum(ctx context.Context, id string) error {
	v, err := n.viewVoters(ctx)
	if err != nil {
		return err
	}
	return quorumWithout(v, id)
}

// removalKeepsBodies is the other check Remove makes unless forced: no
// referenced body listed on id may be left without another copy that
// verifies now (read back and checked against its hash by the member
// holding it) on a member that answers now (answeringMembers). Repair
// copies only from members, so a body whose one good copy is on the node
// removed (every body it holds under R=1, one whose other replicas are
// down, or whose other copies rotted or vanished unnoticed) could never
// be copied again, though the copy itself may still be intact on the
// node just removed: the acknowledged message would be lost by an
// operator's routine command. A body whose other listed copies on such
// members all fail the check is copied from id first, if id answers
// (removeverify.go). Raising R and letting repair copy first, or
// bringing the other replicas back, makes the removal pass; --force
// gives the copies up. It reads every body record once, as a repair scan
// does, and every other copy of id's bodies, as `storage verify` does
// for those: acceptable for a command as rare as a removal. before is
// the first look's findings when this is the second: a copy that
// verified then and is still listed on a member that answers counts
// without being read again.
func (n *Node) removalKeepsBodies(ctx context.Context, id string, before *verifiedCopies) (*verifiedCopies, error) {
	up, err := n.answeringMembers(ctx, id)
	if err != nil {
		return nil, err
	}
	live, err := n.liveness()
	if err != nil {
		return nil, err
	}
	rc := &removalCheck{id: id, up: up, live: live, before: before, found: &verifiedCopies{}}
	// Copies are made from id only on the first look: on the second it
	// is no member, and a refusal puts it back for the next try.
	rc.copyOK = before == nil && n.answersAs(ctx, id)
	if err := n.checkRemovalBodies(ctx, rc); err != nil {
		return nil, fmt.Errorf("check the bodies on %s: %w", id, err)
	}
	return rc.found, rc.refusal()
}

// answersAs reports whether member id answers a probe as itself (this
// node always does).
func (n *Node) answersAs(ctx context.Context, id string) bool {
	if id == n.cfg.ID {
		return true
	}
	m, err := n.memberRecord(id)
	if err != nil || m == nil {
		return false
	}
	ms, ok := n.probeMember(ctx, raft.ServerAddress(m.ClusterAddr))
	return ok && ms.ID == id
}

// answeringMembers is the members other than except that answer now
// (this node always does) and have finished a listing audit since they
// started. A removal counts a replica only on those: repair's liveness
// also counts a node down for less than RepairGrace, and every member
// for RepairGrace after this node started, and a body whose other copies
// are on a node that is down, perhaps for good, would be left with no
// copy anyone can read. A node that has not audited its store yet may
// be listed for bodies it lost with a replaced disk (audit.go).
func (n *Node) answeringMembers(ctx context.Context, except string) (map[string]bool, error) {
	ms, err := n.state.Members()
	if err != nil {
		return nil, err
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	up := map[string]bool{}
	for _, m := range ms {
		switch m.ID {
		case except:
		case n.cfg.ID:
			up[m.ID] = n.audited.Load()
		default:
			wg.Go(func() {
				ms, ok := n.probeMember(ctx, raft.ServerAddress(m.ClusterAddr))
				if ok && ms.ID == m.ID && !ms.AuditPending {
					mu.Lock()
					up[m.ID] = true
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	return up, nil
}

// memberRecord is id's member record, nil if it has none.
func (n *Node) memberRecord(id string) (*fsm.Member, error) {
	ms, err := n.state.Members()
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.ID == id {
			return &m, nil
		}
	}
	return nil, nil
}

func (n *Node) removeLocal(ctx context.Context, id string, force bool) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	if !force {
		if err := n.removalKeepsQuorum(ctx, id); err != nil {
			return err
		}
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	known := false
	for _, s := range cf.Configuration().Servers {
		known = known || string(s.ID) == id
	}
	if !known {
		return &fsm.Error{Kind: fsm.ErrNotFound, Msg: fmt.Sprintf("node %s is not a cluster member", id)}
	}
	record, err := n.memberRecord(id)
	if err != nil {
		return err
	}
	var verified *verifiedCopies
	if !force {
		if verified, err = n.removalKeepsBodies(ctx, id, nil); err != nil {
			return err
		}
		if record, err = n.memberRecord(id); err != nil {
			return err
		}
		if n.afterBodyCheck != nil {
			n.afterBodyCheck()
		}
	}
	// Forget the record first: once a leader removes itself it can no
	// longer commit anything.
	if _, err := n.Apply(ctx, &fsm.MemberRemove{ID: id}); err != nil {
		return err
	}
	if !force {
		// Until the record went, a delivery could still list id among its
		// replicas (with W=1, or R=1, as its only one), and the scan above
		// took long enough for many to commit: check again now that none
		// can (Deliver refuses a replica that is no member). If the second
		// look finds a body stranded, or cannot finish, the record comes
		// back and the removal is refused, so repair can copy from id.
		if _, err := n.removalKeepsBodies(ctx, id, verified); err != nil {
			return n.restoreRecord(ctx, id, record, err)
		}
	}
	// The removal itself is decided again on a fresh view and made
	// conditional on it (removeserver.go). Refused, it changed nothing
	// in raft, and the record comes back.
	if err := n.removeServer(ctx, id, force, verified); err != nil {
		var refused *notRemovedError
		if errors.As(err, &refused) {
			return n.restoreRecord(ctx, id, record, err)
		}
		return err
	}
	n.log.Info("node removed", "id", id)
	n.dropRestoredRecord(ctx, id)
	n.kickRepair() // its replicas no longer count
	return nil
}

func (n *Node) raftErr(err error) error {
	if err == raft.ErrNotLeader || err == raft.ErrLeadershipLost {
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	return err
}

// joinThrough asks a member's admin API to add this node, retrying until
// it succeeds or ctx ends.
func (n *Node) joinThrough(ctx context.Context, adminAddr string) error {
	req := JoinRequest{ID: n.cfg.ID, ClusterAddr: n.advertise, AdminAddr: n.adminAdvertise()}
	body, _ := json.Marshal(req)
	backoff := 100 * time.Millisecond
	for {
		err := n.postAdmin(ctx, adminAddr, "/v1/cluster/join", body)
		if err == nil {
			n.log.Info("joined the cluster", "through", adminAddr)
			return nil
		}
		if refused := joinRefused(err); refused != nil {
			return fmt.Errorf("join through %s: %w", adminAddr, refused)
		}
		n.logJoinRetry("join attempt failed", adminAddr, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("join through %s: %w (last error: %v)", adminAddr, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// leaveThrough takes this node's ID out of the cluster, through a
// member's admin API, before a node with a new (empty) data directory
// joins: if the ID is a voter already (a disk replaced, the node set up
// again under its old name), it must not vote with an empty log, which
// could elect a leader that lacks an entry this ID had acknowledged. The
// removal commits only with the others' votes, so they hold every such
// entry first; the join then adds the ID as a new server. An ID that is
// no member is nothing to leave. A removal refused because it would
// leave no quorum is retried until the voters come back (or an operator
// forces it): joining with an empty log then would be the unsafe case.
func (n *Node) leaveThrough(ctx context.Context, adminAddr string) error {
	body, _ := json.Marshal(map[string]string{"id": n.cfg.ID})
	for backoff := 100 * time.Millisecond; ; backoff = min(backoff*2, 2*time.Second) {
		err := n.postAdmin(ctx, adminAddr, "/v1/cluster/remove", body)
		var se *adminStatusError
		if err == nil || errors.As(err, &se) && se.code == http.StatusNotFound {
			return nil
		}
		if refused := joinRefused(err); refused != nil {
			return fmt.Errorf("leave through %s before joining: %w", adminAddr, refused)
		}
		n.logJoinRetry("leaving the cluster before joining with an empty state failed", adminAddr, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("leave through %s before joining: %w (last error: %v)", adminAddr, ctx.Err(), err)
		case <-time.After(backoff):
		}
	}
}

// logWaitingToBeAdded tells the operator of a new node started with
// neither Join nor Bootstrap that it waits for a cluster to add it, and
// the command that does, run through a member; otherwise the log says
// only raft's "no known peers" (a forgotten --join looks just so).
func (n *Node) logWaitingToBeAdded() {
	cmd := "powermail cluster join " + n.cfg.ID + " " + n.advertise
	if admin := n.adminAdvertise(); admin != "" {
		cmd += " " + admin
	}
	n.log.Info("a new node without --join or --bootstrap: waiting to be added to a cluster; unless done already, add it through a member (--addr MEMBER_ADMIN_ADDR), or restart it with --join",
		"command", cmd)
}

// logJoinRetry logs a failed step of joining, to be retried. When the
// member at --join gave no answer at all (nothing listens there, or not
// an admin API), the line says that, rather than what the step was (the
// leave before a join with an empty data directory looked like a removal
// going wrong): a mistyped --join, or a member not started yet.
func (n *Node) logJoinRetry(msg, adminAddr string, err error) {
	if !errors.As(err, new(*adminStatusError)) && !tlsMismatch(err) {
		n.log.Warn("joining: the member at --join does not answer (is it running, and is that its admin address?); retrying", "through", adminAddr, "err", err)
		return
	}
	n.log.Warn(msg, "through", adminAddr, "err", err)
}

// tlsMismatch reports whether err is a member's answer over TLS that
// this node does not trust (a certificate outside Config.AdminRoots, a
// TLS alert), or in plain HTTP at an https:// address. The member runs and answered, so "does not answer, is it
// running?" would send the operator after the wrong thing; the error
// itself names the TLS trouble.
func tlsMismatch(err error) bool {
	var op *net.OpError
	return errors.As(err, new(*tls.CertificateVerificationError)) ||
		errors.As(err, new(tls.RecordHeaderError)) ||
		errors.As(err, &op) && op.Op == "remote error" ||
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// ErrJoinRefused: the cluster answered a join (or the leave before it)
// with a refusal no retry changes: it does not take this node's secret.
// (Other refusals, such as a removal that would leave no quorum, pass
// when the cluster changes, and are retried.)
var ErrJoinRefused = errors.New("the cluster refused this node")

// joinRefused is ErrJoinRefused, with the reason, for such an answer;
// nil for one worth retrying.
func joinRefused(err error) error {
	var se *adminStatusError
	if errors.As(err, &se) && (se.code == http.StatusUnauthorized || se.code == http.StatusForbidden) {
		return fmt.Errorf("%w: it does not take this node's secret (%v)", ErrJoinRefused, err)
	}
	return nil
}

// adminStatusError is an admin API answer other than 2xx.
type adminStatusError struct {
	code int
	msg  string
}

func (e *adminStatusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.code, http.StatusText(e.code), e.msg)
}

// postAdmin posts to a member's admin API with the token, trusting
// Config.AdminRoots for an https:// address.
func (n *Node) postAdmin(ctx context.Context, adminAddr, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, "POST", adminURL(adminAddr)+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+string(n.cfg.Secret))
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: n.cfg.AdminRoots, MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e apiError
		json.NewDecoder(resp.Body).Decode(&e)
		return &adminStatusError{code: resp.StatusCode, msg: e.Message}
	}
	return nil
}

func adminURL(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimSuffix(addr, "/")
	}
	return "http://" + addr
}

// adminAdvertise is the admin address told to other nodes and the CLI:
// with AdminTLS, a URL that says https. Without AdminAdvertise, an admin
// API bound to a wildcard (0.0.0.0, ::) is told as the cluster address's
// host with the admin port: "[::]:8000" is no address of it elsewhere.
func (n *Node) adminAdvertise() string {
	if n.cfg.AdminAdvertise != "" {
		return n.cfg.AdminAdvertise
	}
	addr := n.AdminAddr()
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			if chost, _, err := net.SplitHostPort(n.advertise); err == nil {
				addr = net.JoinHostPort(chost, port)
			}
		}
	}
	if n.cfg.AdminTLS != nil {
		return "https://" + addr
	}
	return addr
}

// publishSelf keeps this node's member record current (its addresses may
// change between restarts) and, right after a bootstrap, writes the
// initial cluster settings.
func (n *Node) publishSelf(ctx context.Context, bootstrapped bool) {
	want := fsm.Member{ID: n.cfg.ID, ClusterAddr: n.advertise, AdminAddr: n.adminAdvertise()}
	for backoff := 100 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
		err := n.publishOnce(ctx, want, bootstrapped)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

func (n *Node) publishOnce(ctx context.Context, want fsm.Member, bootstrapped bool) error {
	if err := n.Barrier(ctx); err != nil {
		return err
	}
	if bootstrapped && n.cfg.BootstrapSettings != nil {
		s := n.cfg.BootstrapSettings
		// A new cluster runs one release, so it writes the newest encoding.
		set := fsm.Settings{Replicas: s.Replicas, WriteQuorum: s.WriteQuorum,
			CommandEncoding: cmp.Or(s.CommandEncoding, fsm.NewestEncoding), MaxVoters: fsm.DefaultMaxVoters}
		if _, err := n.Apply(ctx, &fsm.SettingsSet{Settings: set}); err != nil {
			return err
		}
	}
	if !n.inConfiguration() {
		return nil
	}
	members, err := n.state.Members()
	if err != nil {
		return err
	}
	for _, m := range members {
		if m == want {
			return nil
		}
	}
	_, err = n.Apply(ctx, &fsm.MemberSet{Member: want})
	return err
}

func (n *Node) inConfiguration() bool {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == n.cfg.ID {
			return true
		}
	}
	return false
}
