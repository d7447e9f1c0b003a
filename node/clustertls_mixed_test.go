package node

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mixed mode, for switching a running cluster: a mixed node admits plain
// and TLS peers, and dials TLS first, falling back to plain only with a
// peer that does not speak TLS, never with one that refuses its
// certificate.
func TestClusterTLSMixedDialMatrix(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	one := func(tweak func(*Config)) string {
		return newTestClusterWith(t, 1, tweak).leader(5 * time.Second).ClusterAddr()
	}
	plainNode := one(nil)
	requireNode := one(func(cfg *Config) { cfg.ClusterTLS = ca.config(t, cfg.ID) })
	mixedNode := one(func(cfg *Config) { cfg.ClusterTLS, cfg.ClusterTLSMixed = ca.config(t, cfg.ID), true })

	plain := clusterDialer{secret: testSecret}
	withTLS := clusterDialer{secret: testSecret, tls: ca.config(t, "n8")}
	mixed := clusterDialer{secret: testSecret, tls: ca.config(t, "n9"), mixed: true}
	foreign := clusterDialer{secret: testSecret, tls: newTestCA(t, "another CA").config(t, "n9"), mixed: true}
	for _, c := range []struct {
		name    string
		d       clusterDialer
		addr    string
		wantTLS bool
	}{
		{"plain to mixed", plain, mixedNode, false},
		{"TLS to mixed", withTLS, mixedNode, true},
		{"mixed to plain, falling back", mixed, plainNode, false},
		{"mixed to TLS", mixed, requireNode, true},
		{"mixed to mixed", mixed, mixedNode, true},
	} {
		conn, err := c.d.dial(ctxT(t, 10*time.Second), c.addr, kindRPC)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if _, isTLS := conn.(*tls.Conn); isTLS != c.wantTLS {
			t.Errorf("%s: TLS %v, want %v", c.name, isTLS, c.wantTLS)
		}
		conn.Close()
	}
	// A refusal from a TLS node gets no retry in plain, which the mixed
	// node would otherwise admit: the dialer refusing the node's
	// certificate, and the node refusing the dialer's (which in TLS 1.3
	// comes after the dialer's handshake is done).
	wantRefused(t, foreign, mixedNode, kindRPC, "a foreign CA to a mixed node")
	wantRefused(t, foreign, requireNode, kindRPC, "a foreign CA to a TLS node")
	ownCert := mixed
	ownCert.tls = mixed.tls.Clone()
	ownCert.tls.GetClientCertificate = foreign.tls.GetClientCertificate
	wantRefused(t, ownCert, mixedNode, kindRPC, "a foreign client certificate to a mixed node")
	// Once a peer has spoken TLS, a plain retry with it is never made.
	seen := mixed
	seen.spokeTLS = &sync.Map{}
	seen.spokeTLS.Store(plainNode, true)
	if conn, err := seen.dial(ctxT(t, 10*time.Second), plainNode, kindRPC); err == nil {
		conn.Close()
		t.Fatal("a plain retry with a peer that spoke TLS before")
	}
	wantRefused(t, clusterDialer{secret: []byte("wrong-secret-wrong-secret")}, mixedNode, kindRaft, "plain with the wrong secret to a mixed node")
}

// The first step of a switch: a plain node and two mixed ones form one
// cluster (plain between the plain node and the others, TLS between the
// mixed ones) and deliver across it.
func TestClusterTLSMixedCluster(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	c := repairCluster(t, 3, func(cfg *Config) {
		if cfg.ID != "n1" {
			cfg.ClusterTLS, cfg.ClusterTLSMixed = ca.config(t, cfg.ID), true
		}
	})
	l := c.leader(5 * time.Second)
	hashes := deliverN(t, c.nodes["n3"], 3, 500)
	assertRedundant(t, c, l, hashes, 2)
	conn, err := c.nodes["n2"].dialer().dial(ctxT(t, 5*time.Second), c.nodes["n3"].ClusterAddr(), kindRPC)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, ok := conn.(*tls.Conn); !ok {
		t.Fatalf("two mixed nodes talk %T, want TLS", conn)
	}
}

// A node in mixed mode says so in its log, so that a switch left half
// done is noticed.
func TestMixedTLSIsLogged(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	var buf syncBuffer
	newTestClusterWith(t, 1, func(cfg *Config) {
		cfg.ClusterTLS, cfg.ClusterTLSMixed = ca.config(t, cfg.ID), true
		cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}).leader(5 * time.Second)
	waitFor(t, 5*time.Second, "the warning", func() bool { return strings.Contains(buf.String(), "cluster TLS is in mixed mode") })
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
