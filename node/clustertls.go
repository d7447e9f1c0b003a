package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"
)

// Cluster TLS. The cluster secret authenticates peers but leaves the
// cluster port in the clear: message bodies going to their replicas, and
// the directory's raft log, can be read by anyone on the path. With
// ClusterTLS every cluster connection (raft, RPC, body streams) is a TLS
// 1.3 session in which both ends present a certificate issued by the
// cluster CA, and the secret's handshake then runs inside it.
//
// Invariants:
//   - A node with ClusterTLS dials only TLS and accepts only TLS; a node
//     without it refuses TLS. In mixed mode (ClusterTLSMixed, for the
//     switch) a node admits both, telling them apart by the first byte
//     (mux.go), and dials TLS first, retrying in plain only when the peer
//     closed on the TLS hello as a plain node does; a peer that refuses
//     its certificate gets no plain retry. So a running cluster switches
//     without a loss of quorum: restart the nodes one at a time in mixed
//     mode, then one at a time in the default mode. In mixed mode an
//     attacker on the path can force plain with a peer that has not yet
//     completed TLS with this node (never with one that has: spokeTLS),
//     and what follows can be read (and, with the unsealed version-1
//     handshake below command encoding 5, altered): mixed is for the
//     switch only.
//   - Certificates are checked against the cluster CA alone, not against
//     host names or key usages: nodes are often reached by IP address,
//     and the CA (a dedicated one) says who is a node. The secret is
//     still required, and its handshake is bound to the TLS session
//     (mux.go), so a holder of a certificate alone cannot relay it.
//   - The files are read at start and again on TLSFiles.Reload (SIGHUP):
//     renew a certificate ahead of its expiry, replace the files and
//     signal the node. Connections already up keep their sessions; an
//     expired certificate refuses every new connection to and from its
//     node. A new CA is rolled out as a bundle holding the old and the
//     new one first, on every node, before any node's certificate is
//     issued by the new one.

// ErrClusterTLS reports unusable cluster TLS files.
var ErrClusterTLS = errors.New("invalid cluster TLS settings")

// ClusterTLSConfig builds Config.ClusterTLS from a node's certificate and
// key and the cluster CA's certificates (all PEM files).
func ClusterTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, fmt.Errorf("%w: no cluster CA", ErrClusterTLS)
	}
	f, err := LoadTLSFiles(certFile, keyFile, caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClusterTLS, err)
	}
	return f.ClusterConfig(), nil
}

// ClusterConfig is the one config both ends of a cluster connection use,
// presenting the current certificate and checking the peer's against the
// current CA. f must have a CA.
func (f *TLSFiles) ClusterConfig() *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetCertificate:       f.serverCert,
		GetClientCertificate: f.clientCert,
		// Both sides check the peer's chain in VerifyConnection, against
		// the CA alone: no host name, and any key usage, since a node's
		// one certificate serves both ends of a connection. (The
		// handshake still proves that the peer holds the key.)
		ClientAuth:         tls.RequireAnyClientCert,
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w: the peer sent no certificate", ErrUnauthenticated)
			}
			roots := f.cur.Load().roots
			if roots == nil { // never the system's roots: only the cluster CA says who is a node
				return fmt.Errorf("%w: no cluster CA", ErrUnauthenticated)
			}
			if err := verifyCerts(cs.PeerCertificates, roots); err != nil {
				return fmt.Errorf("%w: peer certificate: %w", ErrUnauthenticated, err)
			}
			return nil
		},
	}
}

// mixedTLSReminder is how often a node in mixed mode says so.
const mixedTLSReminder = time.Hour

// remindMixedTLS logs, at start and then hourly, that this node admits
// plain cluster connections, so that a switch left half done is noticed.
func (n *Node) remindMixedTLS(ctx context.Context) {
	if n.cfg.ClusterTLS == nil || !n.cfg.ClusterTLSMixed {
		return
	}
	warn := func() {
		n.log.Warn("cluster TLS is in mixed mode: plain connections are admitted; finish the switch by restarting every node without --cluster-tls-mode mixed")
	}
	warn()
	every(ctx, mixedTLSReminder, warn)
}
