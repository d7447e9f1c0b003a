package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// Config describes one cluster member.
type Config struct {
	ID      string
	DataDir string
	// ClusterAddr is where raft and the cluster RPC listen ("host:0" picks
	// a free port). AdvertiseAddr is what peers dial; it defaults to the
	// bound address and must be set when binding a wildcard address.
	ClusterAddr   string
	AdvertiseAddr string
	// AdminAddr is the admin HTTP API's listen address; empty disables it.
	// AdminAdvertise is what other nodes and the CLI are told (default:
	// the bound address; on a wildcard, the advertised cluster host).
	AdminAddr      string
	AdminAdvertise string
	// Secret authenticates cluster peers and is the admin API token.
	Secret []byte
	// ClusterTLS, when set, carries every cluster connection over TLS
	// between holders of the cluster CA's certificates (see
	// ClusterTLSConfig); nil is plain TCP.
	ClusterTLS *tls.Config
	// ClusterTLSMixed, with ClusterTLS, also admits plain connections and
	// falls back to plain with a peer that does not speak TLS: for
	// switching a running cluster to TLS without a loss of quorum
	// (clustertls.go). The secret still authenticates every connection.
	ClusterTLSMixed bool
	// AdminTLS, when set, serves the admin API over HTTPS only (see
	// TLSFiles.ServerConfig); the token then never crosses the network
	// in the clear. AdminRoots are the CAs trusted when joining through an
	// https:// admin address (nil: the system's).
	AdminTLS   *tls.Config
	AdminRoots *x509.CertPool
	// AdminReadTimeout bounds the reading of one admin request, header and
	// body (an import's CSV is the largest); zero means 5 minutes.
	// AdminMaxConns caps the admin API's open connections; one more is
	// closed at once. Zero means 256.
	AdminReadTimeout time.Duration
	AdminMaxConns    int
	// AdminMaxConnsPerIP caps those from one address, so that one
	// stranger's silent connections cannot fill AdminMaxConns; zero means
	// 32. Connections from the node's own host and from the members'
	// hosts count against neither cap.
	AdminMaxConnsPerIP int
	// RestoreMaxBytes is the largest max_bytes (largest message) a
	// mailbox restore may ask for; a larger one is refused with 400. Zero
	// means DefaultRestoreMaxBytesCeiling. RestoreMemoryBytes is the
	// largest message a restore holds in memory; a larger one is spooled
	// to an unlinked file in DataDir. Zero means DefaultRestoreMemoryBytes.
	RestoreMaxBytes    int64
	RestoreMemoryBytes int64

	// Bootstrap creates a new single-voter cluster if DataDir holds no raft
	// state; BootstrapSettings are then written as the cluster settings.
	Bootstrap         bool
	BootstrapSettings *BootstrapSettings
	// Join is a member's admin address to join through when DataDir holds
	// no raft state.
	Join string

	// OrphanGrace is how old a body nobody references must be before the
	// sweep (every OrphanSweepInterval) deletes it. Zero means the defaults
	// (DefaultOrphanGrace, every 10 minutes).
	OrphanGrace         time.Duration
	OrphanSweepInterval time.Duration
	// GCInterval is how often the leader collects unreferenced bodies;
	// GCIdle how long a copy must have gone unwritten to be deleted.
	// Zero means DefaultGCInterval and DefaultGCIdle.
	GCInterval time.Duration
	GCIdle     time.Duration

	// Redundancy upkeep (repair.go, scrub.go). RepairGrace is how long a
	// member may be unreachable before its replicas stop counting;
	// RepairRate bounds repair and rebalance copying, and a trim's reading
	// back of the copies that stay (bytes/s);
	// RebalanceSpread is the allowed (max-min)/max of used bytes across
	// live members (where their filesystems differ in size, of the share
	// of what each could hold that its bodies take: rebalance_plan.go).
	// ScrubRate bounds background verification (bytes/s).
	// Zero means the Default* values.
	RepairGrace    time.Duration
	RepairInterval time.Duration
	RepairRate     int64
	// RepairBusyCopies is how many repair and rebalance copies of bodies
	// over 64 KiB run at once while mail is being delivered (at most 32,
	// which is the number when the cluster is quiet); a smaller body counts
	// as a quarter. Zero means DefaultRepairBusyCopies.
	RepairBusyCopies int
	RebalanceSpread  float64
	ScrubInterval    time.Duration
	ScrubRate        int64
	// PeerPollInterval is how often each node polls its peers' storage
	// figures (placement, liveness for repair). Zero means 10 s.
	PeerPollInterval time.Duration
	// VoterUpkeepInterval is how often the leader checks the voter set
	// (voters.go). Zero means DefaultVoterUpkeepInterval.
	VoterUpkeepInterval time.Duration
	// VoterStabilization is how long a non-voter must have answered and
	// kept up with the log, at every upkeep, before it is promoted, so a
	// node in a crash loop is not made a voter in one of its short lives.
	// Zero means DefaultVoterStabilization.
	VoterStabilization time.Duration
	// FaultInjection enables the admin API's fault endpoints (damaging a
	// stored body) for the jepsen harness. Never in production.
	FaultInjection bool

	// ReplicaTimeout bounds how long a peer may stall a body transfer
	// (take no data, or not answer after the last byte) before it is
	// dropped from the delivery. Zero means 5 s.
	ReplicaTimeout time.Duration

	// RemoteReadMax is the largest body read from another node's replica
	// into memory (larger ones are copied into the local store first);
	// RemoteCacheBytes bounds the node-wide cache of such bodies
	// (remoteread.go). Zero means the Default* values; a negative
	// RemoteReadMax copies every remote body into the store.
	RemoteReadMax    int64
	RemoteCacheBytes int64
	// StorageCacheBytes is the body store's block cache (zero:
	// storage.DefaultCacheBytes).
	StorageCacheBytes int64
	// BodySyncInterval is the least time between two syncs of the body
	// store's log (storage.Options.SyncInterval): concurrent deliveries
	// that arrive meanwhile share the next sync. Zero means
	// DefaultBodySyncInterval; negative means none.
	BodySyncInterval time.Duration
	// MinFreeBytes is the free space new bodies must leave on the body
	// store's filesystem (storage.Options.MinFreeBytes). Below it this
	// node refuses new copies: its own deliveries get 452 4.3.1 and peers
	// place elsewhere. Raft snapshot streams written to the data
	// directory (a view to send, one received) are held to it too
	// (snapspace.go). Zero means storage.DefaultMinFreeBytes; negative
	// means no reserve.
	MinFreeBytes int64
	// BodyStoreReopenInterval is how long after its body store failed
	// (a failed write or fsync: storage.ErrFailed) the node first tries
	// to reopen it; each failed try doubles the wait, up to
	// maxReopenBackoff times the interval (bodyreopen.go). Zero means
	// DefaultBodyStoreReopenInterval; negative means never (the node
	// stays failed until it restarts).
	BodyStoreReopenInterval time.Duration
	// BodyFS is the filesystem the body store is on (storage.Options.FS);
	// nil is the operating system's. The raft snapshot store reads its
	// free space through it too. Tests inject disk faults through it.
	BodyFS vfs.FS
	// RaftLogStore, when set, wraps the raft log store (bolt) before raft
	// gets it. Tests inject log write failures through it.
	RaftLogStore func(raft.LogStore) raft.LogStore
	// auditHold, tests only, holds the listing audit at start until it
	// is closed (a large store's audit takes a while).
	auditHold <-chan struct{}

	// PasswordMemory bounds the memory of password checks in flight
	// (argon2id's m each, at least 16 MiB). Logins beyond it wait.
	// Zero means DefaultPasswordMemory.
	PasswordMemory int64

	// EntryMessages bounds the messages one raft entry of a folder delete,
	// mailbox removal, expunge, MOVE or COPY acts on: a larger one is proposed
	// as several (pieces.go), so that deliveries need not wait behind one
	// long apply. Zero means DefaultEntryMessages.
	EntryMessages int

	// CopyUndoTimeout bounds the undoing of a COPY that failed part way
	// (copypieces.go): its copies expunged again. Zero means
	// DefaultCopyUndoTimeout.
	CopyUndoTimeout time.Duration

	// RefusedNoticeTimeout bounds the commit of a failure notice about
	// mailboxes a delivery's commit refused while it kept the message
	// elsewhere (dsnrefused.go), which the SMTP client's 250 waits for;
	// past it the notice is logged and dropped, and the 250 stands. Zero
	// means DefaultRefusedNoticeTimeout; at most MaxRefusedNoticeTimeout.
	RefusedNoticeTimeout time.Duration

	// MaildropLease is the POP3 maildrop lock lease (zero: 30 s).
	MaildropLease time.Duration

	// Queue tunes the outbound queue (queue_config.go).
	Queue QueueConfig

	Raft         RaftTuning
	ApplyTimeout time.Duration
	// Logger receives the node's log lines, raft's own among them
	// (module=raft; warnings and errors only).
	Logger *slog.Logger
}

// BootstrapSettings are the replication settings of a new cluster.
type BootstrapSettings struct {
	Replicas, WriteQuorum int
	// CommandEncoding is the new cluster's (0: the newest); an older one
	// starts a cluster as an earlier release would, for tests of an
	// upgrade.
	CommandEncoding int
}

// RaftTuning exposes the raft timings that tests and operators change.
type RaftTuning struct {
	HeartbeatTimeout  time.Duration
	ElectionTimeout   time.Duration
	LeaderLeaseTimout time.Duration
	CommitTimeout     time.Duration
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	MaxAppendEntries  int
	// ApplyWindow is how many batches of proposals the leader lets into
	// raft at once; proposals arriving meanwhile wait and go in together
	// (applygate.go). Zero means 1; negative disables the gate.
	ApplyWindow int
}

// DefaultBodySyncInterval is Config.BodySyncInterval's default. With
// 20 concurrent SMTP sessions on the benchmark machine it cut the
// cluster's fdatasyncs per delivery from 2.6-2.9 to 2.0 and its CPU per
// delivery by 8 %, at the cost of at most 2 ms per delivery
// (BENCHMARKS.md).
const DefaultBodySyncInterval = 2 * time.Millisecond

// DefaultBodyStoreReopenInterval is Config.BodyStoreReopenInterval's
// default: an operator who frees disk space sees the node back within
// about that long, and a disk that still fails costs one try that often.
const DefaultBodyStoreReopenInterval = 30 * time.Second

// ErrConfig reports an unusable configuration.
var ErrConfig = errors.New("invalid node configuration")

func (c *Config) setDefaults() error {
	if c.ID == "" || c.DataDir == "" || c.ClusterAddr == "" {
		return fmt.Errorf("%w: id, data dir and cluster address are required", ErrConfig)
	}
	if len(c.Secret) < 16 {
		return fmt.Errorf("%w: the cluster secret must have at least 16 bytes", ErrConfig)
	}
	if c.Bootstrap && c.Join != "" {
		return fmt.Errorf("%w: bootstrap and join exclude each other", ErrConfig)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Queue.setDefaults()
	setDur(&c.ReplicaTimeout, 5*time.Second)
	setDur(&c.AdminReadTimeout, 5*time.Minute)
	setInt(&c.AdminMaxConns, 256)
	setInt(&c.EntryMessages, DefaultEntryMessages)
	setDur(&c.CopyUndoTimeout, DefaultCopyUndoTimeout)
	setDur(&c.RefusedNoticeTimeout, DefaultRefusedNoticeTimeout)
	if c.RefusedNoticeTimeout < 0 || c.RefusedNoticeTimeout > MaxRefusedNoticeTimeout {
		return fmt.Errorf("%w: the refused-at-commit notice's limit %v must be positive and at most %v",
			ErrConfig, c.RefusedNoticeTimeout, MaxRefusedNoticeTimeout)
	}
	setInt(&c.AdminMaxConnsPerIP, 32)
	if c.RestoreMaxBytes <= 0 {
		c.RestoreMaxBytes = DefaultRestoreMaxBytesCeiling
	}
	if c.RestoreMemoryBytes <= 0 {
		c.RestoreMemoryBytes = DefaultRestoreMemoryBytes
	}
	setDur(&c.OrphanGrace, DefaultOrphanGrace)
	setDur(&c.OrphanSweepInterval, 10*time.Minute)
	setDur(&c.GCInterval, DefaultGCInterval)
	setDur(&c.GCIdle, DefaultGCIdle)
	setDur(&c.RepairGrace, DefaultRepairGrace)
	setDur(&c.RepairInterval, DefaultRepairInterval)
	setDur(&c.ScrubInterval, DefaultScrubInterval)
	setDur(&c.PeerPollInterval, 10*time.Second)
	setDur(&c.VoterUpkeepInterval, DefaultVoterUpkeepInterval)
	setDur(&c.VoterStabilization, DefaultVoterStabilization)
	setDur(&c.BodySyncInterval, DefaultBodySyncInterval) // storage.Open checks its range
	setDur(&c.BodyStoreReopenInterval, DefaultBodyStoreReopenInterval)
	setInt(&c.RepairBusyCopies, DefaultRepairBusyCopies)
	if c.RepairRate <= 0 {
		c.RepairRate = DefaultRepairRate
	}
	if c.RemoteReadMax == 0 {
		c.RemoteReadMax = DefaultRemoteReadMax
	}
	if c.PasswordMemory <= 0 {
		c.PasswordMemory = DefaultPasswordMemory
	}
	if c.RemoteCacheBytes <= 0 {
		c.RemoteCacheBytes = DefaultRemoteCacheBytes
	}
	if c.ScrubRate <= 0 {
		c.ScrubRate = DefaultScrubRate
	}
	if c.RebalanceSpread <= 0 {
		c.RebalanceSpread = DefaultRebalance
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = 10 * time.Second
	}
	r := &c.Raft
	setDur(&r.HeartbeatTimeout, time.Second)
	setDur(&r.ElectionTimeout, time.Second)
	setDur(&r.LeaderLeaseTimout, 500*time.Millisecond)
	setDur(&r.CommitTimeout, 5*time.Millisecond)
	setDur(&r.SnapshotInterval, 2*time.Minute)
	if r.SnapshotThreshold == 0 {
		r.SnapshotThreshold = 16384
	}
	if r.TrailingLogs == 0 {
		r.TrailingLogs = 10240
	}
	if r.MaxAppendEntries == 0 {
		r.MaxAppendEntries = 512
	}
	if r.ApplyWindow == 0 {
		r.ApplyWindow = 1
	}
	return nil
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}
