package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	"golang.org/x/sync/semaphore"

	"powermail/fsm"
	"powermail/storage"
)

// Sentinel errors of cluster operations.
var (
	ErrNoLeader      = errors.New("no cluster leader")
	ErrNotLeader     = errors.New("not the cluster leader")
	ErrIndeterminate = errors.New("outcome unknown: leadership changed while committing")
	ErrClosed        = errors.New("node closed")
)

// Node is one cluster member: raft, the directory state, the cluster RPC
// and the admin API.
type Node struct {
	cfg       Config
	log       *slog.Logger
	state     *fsm.State
	bodies    *storage.Store
	bodyBufs  sync.Pool // *[]byte of smallBody bytes (replicate.go)
	gate      *applyGate
	health    peerHealth
	placement placement
	metrics   *metrics

	raft      *raft.Raft
	logStore  *raftboltdb.BoltStore
	snaps     *snapshotStore
	transport *raftTransport
	mux       *mux
	bodySrv   *bodyServer // body streams from peers (bodystream.go)
	bodyPool  *bodyPool   // body streams to peers
	advertise string

	rpcServer *http.Server
	rpc       *http.Client
	reads     *readIndex
	admin     *adminServer

	queue         *outbound    // outbound queue worker (queue.go)
	watchers      watchers     // IMAP/POP3 sessions waiting for mailbox changes
	views         viewCache    // folder message lists shared by sessions
	remote        *remoteCache // small bodies read from other nodes' replicas
	started       time.Time
	srsShortUntil time.Time // short SRS hashes are taken until then (srs.go)
	repair        repairState
	limiter       byteLimiter  // repair and rebalance copying
	lastMail      atomic.Int64 // unix nanos of the last applied delivery
	copies        *copyGate    // repair and rebalance copies at once
	repairKick    chan struct{}
	leaderKick    chan struct{} // kicks for the leader's repair (scrub.go)
	scrubLimiter  byteLimiter
	corrupt       atomic.Int64 // corrupt local copies found
	missing       atomic.Int64 // listed bodies found missing from the local store
	audited       atomic.Bool  // a listing audit finished since start (audit.go)
	dummyOnce     sync.Once
	dummy         string              // password hash for unknown users (timing)
	passwords     *semaphore.Weighted // memory of password checks in flight (auth.go)

	raftUp      atomic.Bool   // raft is started: cluster RPCs may use it
	readyTerm   atomic.Uint64 // term in which this leader passed a barrier
	terms       termProbes    // requests for the voters' terms (termprobe.go)
	stallBodies atomic.Bool   // tests only: accept body uploads and reads and never answer
	// wasMember: this node has held, since it started, a configuration
	// that lists it (removed.go).
	wasMember atomic.Bool
	// configIndex is the newest committed configuration's index known
	// here, for conditional configuration changes (configindex.go).
	configIndex configIndex
	// recordMu orders the member record a refused removal puts back
	// after the server's presence in raft's configuration was checked,
	// with the record's removal once a server left it (removeserver.go).
	recordMu sync.Mutex

	termless termlessPeers // voters without /rpc/term (leaderterm.go)
	// onRepairKick, tests only, is called first by the /rpc/repair
	// handler; true means it took care of the request (a test holds it
	// unanswered, as a paused leader would).
	onRepairKick atomic.Pointer[func(*http.Request) bool]
	// onTerm, tests only, is called first by the /rpc/term handler (a
	// test holds the answer back, as a slow or paused voter would).
	onTerm atomic.Pointer[func(*http.Request)]
	// onVerifyCount, tests only, is called for each body storage verify
	// counts before it checks them (a test makes the count take long).
	onVerifyCount atomic.Pointer[func()]
	// onApplied, tests only, sees each Apply's command and error once it
	// returns, and gives the error Apply answers: a test hides the
	// outcome of a committed entry (ErrIndeterminate), as a leader
	// change that cut off its answer would.
	onApplied atomic.Pointer[func(fsm.Command, error) error]
	// afterBodyCheck, tests only, runs between an unforced removal's
	// first body check and the removal of the member record.
	afterBodyCheck func()
	// beforeConfigRemoval, tests only, runs between the decision of a
	// removal (an operator's, or a join's replacement) on a fresh view of
	// the configuration and raft's change (removeserver.go).
	beforeConfigRemoval func(id raft.ServerID)
	// beforeJoinRecord, tests only, runs after a join's raft change and
	// before it writes the joiner's member record.
	beforeJoinRecord func(id string)
	// beforeUnlist, tests only, runs after repair checked that the copies
	// it keeps are on members and before it unlists others (a trim's,
	// after the kept copies were verified).
	beforeUnlist func(keep, drop []string)
	// beforeDropMadeFolder, tests only, runs between dropMadeFolder's
	// look at the folder a failed RENAME INBOX made and its delete (a
	// test lands a commit there, as raft would one still in flight).
	beforeDropMadeFolder func()
	// afterSettingsRead, tests only, runs between a settings update's
	// read of the current settings and its proposal (admin_settings.go).
	afterSettingsRead func()
	cancel            context.CancelFunc
	bgctx             context.Context // ends when the node closes
	notices           chan struct{}   // success notices in flight (dsnsuccess.go)
	noticeDrops       atomic.Int64    // success notices dropped, for the log
	spokeTLS          sync.Map        // cluster addresses that completed TLS (mux.go)
	spokeV2           sync.Map        // cluster addresses that completed the version-2 handshake
	v1                v1Links         // unsealed version-1 connections, ended at encoding 5 (linkv1.go)
	memberHosts       memberHosts     // the members' host names, resolved (memberhosts.go)
	voterHealth       voterHealth     // the leader's view of non-voters (voters.go)
	requests          inflight        // HTTP requests being served (inflight.go)
	spawnMu           sync.Mutex      // orders spawn against close's cancel
	bg                sync.WaitGroup
	closeOnce         sync.Once
	digests           *digests // this node's recent state digests (statedigest.go)
}

// New starts a node: it opens its data, listens on the cluster and admin
// addresses, starts raft, and bootstraps or joins when asked and when the
// data directory holds no raft state yet.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.ID), metrics: newMetrics(),
		started: time.Now(), repairKick: make(chan struct{}, 1), leaderKick: make(chan struct{}, 1), notices: make(chan struct{}, maxSuccessNotices), digests: newDigests()}
	n.limiter.rate, n.scrubLimiter.rate = cfg.RepairRate, cfg.ScrubRate
	n.copies = newCopyGate(cfg.RepairBusyCopies, &n.lastMail)
	n.remote = newRemoteCache(cfg.RemoteCacheBytes)
	n.passwords = semaphore.NewWeighted(cfg.PasswordMemory)
	if err := n.open(); err != nil {
		n.Close()
		return nil, err
	}
	var err error
	if n.srsShortUntil, err = srsShortUntil(cfg.DataDir, n.started); err != nil {
		n.Close()
		return nil, err
	}
	bgctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.bgctx = cancel, bgctx
	fresh, err := n.startRaft()
	n.raftUp.Store(err == nil)
	if err != nil {
		n.Close()
		return nil, err
	}
	if cfg.AdminAddr != "" {
		if n.admin, err = startAdmin(n); err != nil {
			n.Close()
			return nil, err
		}
	}
	if cfg.Join != "" {
		// A new node must be in before it serves; a known one (restarted,
		// or removed and coming back) re-joins in the background, which is
		// a no-op when nothing changed.
		if fresh {
			err = n.leaveThrough(ctx, cfg.Join)
			if err == nil {
				err = n.joinThrough(ctx, cfg.Join)
			}
		} else {
			n.spawn(func(ctx context.Context) {
				if err := n.joinThrough(ctx, cfg.Join); err != nil && ctx.Err() == nil {
					n.log.Error("re-joining the cluster failed", "err", err)
				}
			})
		}
		if err != nil {
			n.Close()
			return nil, err
		}
	}
	if fresh && cfg.Join == "" && !cfg.Bootstrap {
		n.logWaitingToBeAdded()
	}
	if cfg.Bootstrap && (fresh || n.bootstrapUnfinished()) {
		// A new cluster's settings (R, W) are in place before New returns,
		// so no delivery can meet the defaults instead.
		n.publishSelf(ctx, true)
		if err := ctx.Err(); err != nil {
			n.Close()
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	n.queue = n.newOutbound()
	n.watchQueue()
	// The background loops; Close ends their context and waits for them.
	for _, loop := range []func(context.Context){
		n.auditAtStart,
		n.remindMixedTLS,
		n.endV1LinksAtRaise,
		n.refreshMemberHosts,
		func(ctx context.Context) { n.voterLoop(ctx, n.cfg.VoterUpkeepInterval) },
		n.queueLoop,
		func(ctx context.Context) { n.repairLoop(ctx, n.cfg.RepairInterval) },
		func(ctx context.Context) { n.scrubLoop(ctx, n.cfg.ScrubInterval) },
		n.kickLoop,
		func(ctx context.Context) { n.pollStorage(ctx, n.cfg.PeerPollInterval) },
		func(ctx context.Context) { n.publishSelf(ctx, false) },
		func(ctx context.Context) { n.sweepLoop(ctx, n.cfg.OrphanSweepInterval, n.cfg.OrphanGrace) },
		func(ctx context.Context) { n.gcLoop(ctx, n.cfg.GCInterval) },
		func(ctx context.Context) { n.reopenLoop(ctx, n.cfg.BodyStoreReopenInterval) },
	} {
		n.spawn(loop)
	}
	return n, nil
}

func (n *Node) open() error {
	if err := os.MkdirAll(n.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	st, err := fsm.Open(filepath.Join(n.cfg.DataDir, "fsm"), fsm.Options{Logger: n.log, OnChange: n.watchers.notify, OnRestore: n.watchers.notifyAll,
		OnStateDigest: n.onStateDigest})
	if err != nil {
		return err
	}
	n.state = st
	n.bodies, err = storage.Open(context.Background(), filepath.Join(n.cfg.DataDir, "bodies"), storage.Options{Logger: n.log,
		CacheBytes: n.cfg.StorageCacheBytes, SyncInterval: max(n.cfg.BodySyncInterval, 0), MinFreeBytes: n.cfg.MinFreeBytes, FS: n.cfg.BodyFS})
	if err != nil {
		return err
	}
	n.metrics.watchBodies(n.bodies)
	ln, err := net.Listen("tcp", n.cfg.ClusterAddr)
	if err != nil {
		return fmt.Errorf("listen on cluster address: %w", err)
	}
	n.advertise = n.cfg.AdvertiseAddr
	if n.advertise == "" {
		n.advertise = ln.Addr().String()
		if ip := ln.Addr().(*net.TCPAddr).IP; ip.IsUnspecified() {
			ln.Close()
			return fmt.Errorf("%w: cluster address %s is a wildcard; set an advertise address", ErrConfig, n.cfg.ClusterAddr)
		}
	}
	n.bodySrv = newBodyServer(n)
	n.bodyPool = newBodyPool(n.dialer())
	n.mux = newMux(ln, n.dialer(), n.log, n.bodySrv.serve)
	n.mux.member = n.memberHost
	go n.mux.serve()
	n.rpc = newRPCClient(n.dialer(), n.metrics.rpcDials)
	n.rpcServer = &http.Server{Handler: answerAs(n.cfg.ID, n.requests.wrap(n.untilRaft(n.rpcHandler()))), ReadHeaderTimeout: 10 * time.Second}
	go n.rpcServer.Serve(n.mux.rpc)
	n.reads = &readIndex{n: n}
	return nil
}

// raftLockTimeout bounds the wait for another holder's lock on raft.db
// (a second server fails earlier, on the state store's lock; this covers
// any other process), so a start fails instead of hanging.
const raftLockTimeout = 5 * time.Second

// raftLogOptions tunes bolt for raft's log. Every raft batch is one bolt
// commit on every node. With NoFreelistSync bolt keeps its freelist in
// memory only, rebuilt by a scan of the (small) file when it opens, as
// etcd runs it: commits do not rewrite the freelist page, and a damaged
// freelist page cannot stop a node from opening. Its two fdatasyncs,
// data pages then meta page, are unchanged.
func raftLogOptions() *bbolt.Options {
	return &bbolt.Options{Timeout: raftLockTimeout, NoFreelistSync: true}
}

// startRaft opens raft's stores and starts raft. It reports whether the
// data directory held no raft state before.
func (n *Node) startRaft() (bool, error) {
	dir := filepath.Join(n.cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("create raft dir: %w", err)
	}
	hl := newRaftLogger(n.log)
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), BoltOptions: raftLogOptions()})
	if err != nil {
		return false, fmt.Errorf("open raft log: %w", err)
	}
	n.logStore = store
	if n.snaps, err = newSnapshotStore(dir, n.state, hl, newSnapshotSpace(n.bgctx, n.cfg, dir, n.log, n.metrics.snapsRefused)); err != nil {
		return false, fmt.Errorf("open snapshots: %w", err)
	}
	if err := n.catchUpFromSnapshot(); err != nil {
		return false, err
	}
	// raft resumes after the newest snapshot: the configuration entries
	// it covers are not applied again.
	if err := n.configIndex.noteSnapshots(n.snaps); err != nil {
		return false, err
	}
	var logStore raft.LogStore = store
	if n.cfg.RaftLogStore != nil {
		logStore = n.cfg.RaftLogStore(store)
	}
	logs, err := raft.NewLogCache(1024, logStore)
	if err != nil {
		return false, err
	}
	hasState, err := raft.HasExistingState(logs, store, n.snaps)
	if err != nil {
		return false, fmt.Errorf("inspect raft state: %w", err)
	}
	n.transport = newRaftTransport(raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: &streamLayer{mux: n.mux, dialer: n.dialer(), addr: strAddr(n.advertise)}, MaxPool: 5, Timeout: 10 * time.Second, Logger: hl,
	}))
	rc := n.raftConfig(hl)
	n.raft, err = raft.NewRaft(rc, &raftFSM{state: n.state, metrics: n.metrics, log: n.log, lastMail: &n.lastMail,
		queueRetried:  func(e fsm.QueueEntry) { n.queue.retries.applied(e, time.Now()) },
		configApplied: n.noteConfiguration, configs: &n.configIndex, snapshots: n.snaps, space: n.snaps.space}, logs, store, n.snaps, n.transport)
	if err != nil {
		return false, fmt.Errorf("start raft: %w", err)
	}
	if cf := n.raft.GetConfiguration(); cf.Error() == nil {
		n.noteConfiguration(cf.Configuration())
	}
	n.gate = newApplyGate(n.raft, n.cfg.ApplyTimeout, n.cfg.Raft.ApplyWindow, n.cfg.Raft.MaxAppendEntries)
	n.metrics.watchRaft(n.raft)
	if !hasState && n.cfg.Bootstrap {
		boot := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: raft.ServerAddress(n.advertise)}}}
		if err := n.raft.BootstrapCluster(boot).Error(); err != nil {
			return false, fmt.Errorf("bootstrap: %w", err)
		}
		n.log.Info("bootstrapped a new cluster", "cluster_addr", n.advertise)
	}
	return !hasState, nil
}

func (n *Node) raftConfig(hl hclog.Logger) *raft.Config {
	t := n.cfg.Raft
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.ID)
	rc.Logger = hl
	rc.HeartbeatTimeout = t.HeartbeatTimeout
	rc.ElectionTimeout = t.ElectionTimeout
	rc.LeaderLeaseTimeout = t.LeaderLeaseTimout
	rc.CommitTimeout = t.CommitTimeout
	rc.SnapshotInterval = t.SnapshotInterval
	rc.SnapshotThreshold = t.SnapshotThreshold
	rc.TrailingLogs = t.TrailingLogs
	rc.MaxAppendEntries = t.MaxAppendEntries
	rc.BatchApplyCh = true
	// The state is durable on its own (package fsm), so a restart resumes
	// from it instead of re-installing the last snapshot and replaying.
	rc.NoSnapshotRestoreOnStart = true
	return rc
}

// catchUpFromSnapshot installs the newest raft snapshot if the local state
// is older than it (for example after the state directory was lost), since
// raft will not replay the log entries the snapshot replaced.
func (n *Node) catchUpFromSnapshot() error {
	list, err := n.snaps.List()
	if err != nil || len(list) == 0 || list[0].Index <= n.state.Applied() {
		return err
	}
	// A marker can name an index below raft's for the same snapshot
	// (snapstore.go): only that index must be reached.
	if covered, ok, err := n.snaps.markerIndex(list[0].ID); err != nil || (ok && covered <= n.state.Applied()) {
		return err
	}
	_, rc, err := n.snaps.Open(list[0].ID)
	if errors.Is(err, ErrStateBehindSnapshot) {
		return fmt.Errorf("%w; remove this node's data directory and join it to the cluster again", err)
	}
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", list[0].ID, err)
	}
	defer rc.Close()
	n.log.Warn("state is behind the newest snapshot; installing it", "applied", n.state.Applied(), "snapshot", list[0].Index)
	// Held to a part of the free-space reserve only, where raft's
	// installs are held to all of it: the node cannot run without this
	// one (its log before the snapshot is gone), and the reserve is kept
	// for such work. A node up at its reserve serves reads and refuses
	// body writes; one that did not start serves nothing.
	if err := n.snaps.space.atStart().restore(n.state, rc); err != nil {
		return fmt.Errorf("install snapshot %s: %w", list[0].ID, err)
	}
	return nil
}

// bootstrapUnfinished reports a cluster of this node alone whose
// settings were never written: the first start stopped (a crash, a
// Ctrl-C) between raft's bootstrap and writing them, and this start must
// finish the job instead of leaving the defaults for good. A cluster of
// more members, or one whose settings exist, is left alone.
func (n *Node) bootstrapUnfinished() bool {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	servers := cf.Configuration().Servers
	if len(servers) != 1 || string(servers[0].ID) != n.cfg.ID {
		return false
	}
	stored, err := n.state.SettingsStored()
	return err == nil && !stored
}

// ID is the node's raft server ID.
func (n *Node) ID() string { return n.cfg.ID }

// ClusterAddr is the address peers dial.
func (n *Node) ClusterAddr() string { return n.advertise }

// AdminAddr is the admin API's bound address ("" if disabled).
func (n *Node) AdminAddr() string {
	if n.admin == nil {
		return ""
	}
	return n.admin.addr()
}

// State exposes the local directory for reads. Callers wanting
// linearizable reads call Barrier first.
func (n *Node) State() *fsm.State { return n.state }

// IsLeader reports whether this node is the raft leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// LeaderID returns the current leader's ID, or "".
func (n *Node) LeaderID() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// Snapshot forces a raft snapshot and log compaction (operators and tests).
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// Close stops the node. A leader first hands leadership to a peer so that
// a planned stop does not wait out an election timeout.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() { err = n.close(true) })
	return err
}

// shutdownRaft stops raft and waits until all its goroutines are gone.
// A replication goroutine can sit in a network read to a peer that will
// not answer while it is itself shutting down (seen under heavy load in
// the test suite: both waited for ever); if raft is not down after a few
// seconds, every replication pipeline and the transport are closed, which
// fails such reads, and the wait goes on.
func (n *Node) shutdownRaft() error {
	f := n.raft.Shutdown()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		n.log.Warn("raft shutdown is slow; closing the transport under it")
		if n.transport != nil {
			n.transport.closeAll()
			n.transport.CloseStreams()
			n.transport.Close()
		}
		return <-done
	}
}

// spawn runs f in the background until the node closes, which waits for
// it; once the node is closing, f does not run, and spawn reports false.
func (n *Node) spawn(f func(ctx context.Context)) bool {
	n.spawnMu.Lock()
	defer n.spawnMu.Unlock()
	if n.bgctx == nil || n.bgctx.Err() != nil {
		return false
	}
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		f(n.bgctx)
	}()
	return true
}

// close stops everything in dependency order: raft (and its FSM
// goroutine) is fully down before the state it applies to is closed.
func (n *Node) close(graceful bool) error {
	if n.cancel != nil {
		n.spawnMu.Lock()
		n.cancel()
		n.spawnMu.Unlock()
	}
	if n.admin != nil {
		n.admin.close()
	}
	var errs []error
	if n.raft != nil {
		if graceful && n.raft.State() == raft.Leader {
			_ = n.raft.LeadershipTransfer().Error()
		}
		errs = append(errs, n.shutdownRaft())
		if n.transport != nil {
			n.transport.heartbeats.close() // before the log store closes
		}
		if n.gate != nil {
			n.gate.close()
		}
	}
	if n.transport != nil {
		n.transport.Close()
	}
	if n.rpcServer != nil {
		n.rpcServer.Close()
	}
	if n.bodySrv != nil {
		n.bodySrv.close()
		n.bodyPool.close()
	}
	if n.mux != nil {
		n.mux.close()
	}
	n.bg.Wait()
	if !n.requests.closeAndWait(10 * time.Second) {
		n.log.Warn("requests still running after 10s; closing the stores under them")
	}
	if n.logStore != nil {
		errs = append(errs, n.logStore.Close())
	}
	if n.state != nil {
		errs = append(errs, n.state.Close())
	}
	if n.bodies != nil {
		errs = append(errs, n.bodies.Close())
	}
	return errors.Join(errs...)
}

// Kill stops the node abruptly, as a crash would, without leadership
// transfer. Tests use it to simulate failures inside one process.
func (n *Node) Kill() {
	n.closeOnce.Do(func() { n.close(false) })
}

// dialer opens this node's connections to its peers' cluster ports.
func (n *Node) dialer() clusterDialer {
	return clusterDialer{secret: n.cfg.Secret, tls: n.cfg.ClusterTLS, mixed: n.cfg.ClusterTLS != nil && n.cfg.ClusterTLSMixed,
		spokeTLS: &n.spokeTLS, spokeV2: &n.spokeV2, legacy: n.legacyLinks, v1: &n.v1}
}

// legacyLinks reports whether the cluster links may still use the
// version-1 handshake, whose stream is not sealed: only below command
// encoding 5 (mux.go).
func (n *Node) legacyLinks() bool { return !n.encodingAtLeast(fsm.EncodingJSON5) }

// streamLayer gives raft authenticated connections through the mux.
type streamLayer struct {
	mux    *mux
	dialer clusterDialer
	addr   strAddr
}

// strAddr is the advertised address, which raft uses as this node's own.
type strAddr string

func (a strAddr) Network() string { return "tcp" }
func (a strAddr) String() string  { return string(a) }

func (s *streamLayer) Accept() (net.Conn, error) { return s.mux.raft.Accept() }
func (s *streamLayer) Close() error              { return s.mux.raft.Close() }
func (s *streamLayer) Addr() net.Addr            { return s.addr }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.dialer.dial(ctx, string(addr), kindRaft)
}
