package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
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
//     without it refuses TLS. The switched and the unswitched cannot
//     talk, so switching a cluster costs a short loss of quorum: with
//     three nodes restarted one at a time, the first to switch is cut
//     off until the second joins it, and while the second restarts no
//     side has a majority (writes answer 4xx; clients retry).
//   - Certificates are checked against the cluster CA alone, not against
//     host names or key usages: nodes are often reached by IP address,
//     and the CA (a dedicated one) says who is a node. The secret is
//     still required, and its handshake is bound to the TLS session
//     (mux.go), so a holder of a certificate alone cannot relay it.
//   - Files are read at start: renew certificates ahead of expiry and
//     restart the nodes one at a time (an expired certificate cuts every
//     connection to and from its node).

// ErrClusterTLS reports unusable cluster TLS files.
var ErrClusterTLS = errors.New("invalid cluster TLS settings")

// ClusterTLSConfig builds Config.ClusterTLS from a node's certificate and
// key and the cluster CA's certificates (all PEM files).
func ClusterTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: node certificate: %w", ErrClusterTLS, err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: cluster CA: %w", ErrClusterTLS, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: cluster CA: no PEM certificate in %s", ErrClusterTLS, caFile)
	}
	return clusterTLS(cert, pool), nil
}

// clusterTLS is the one config both ends of a cluster connection use.
func clusterTLS(cert tls.Certificate, ca *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
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
			opts := x509.VerifyOptions{Roots: ca, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
				return fmt.Errorf("%w: peer certificate: %w", ErrUnauthenticated, err)
			}
			return nil
		},
	}
}
