package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"powermail/node/testcerts"
)

// testCA is a certificate authority for tests that also builds cluster
// TLS configs.
type testCA struct{ *testcerts.CA }

func newTestCA(t testing.TB, name string) testCA { return testCA{testcerts.NewCA(t, name)} }

func (ca testCA) config(t testing.TB, name string) *tls.Config {
	t.Helper()
	cfg, err := ClusterTLSConfig(ca.Issue(t, t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A cluster whose nodes hold certificates of one CA runs raft, the RPC
// (a follower's commits) and body streams (replicas) over TLS, and its
// cluster port turns away anyone without both a certificate of that CA
// and the secret.
func TestClusterOverTLS(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	c := repairCluster(t, 3, func(cfg *Config) { cfg.ClusterTLS = ca.config(t, cfg.ID) })
	l := c.leader(5 * time.Second)
	hashes := deliverN(t, c.follower(), 3, 500)
	assertRedundant(t, c, l, hashes, 2)

	ctx := ctxT(t, 10*time.Second)
	good := ca.config(t, "n9")
	if conn, err := (clusterDialer{secret: testSecret, tls: good}).dial(ctx, l.ClusterAddr(), kindRPC); err != nil {
		t.Fatalf("a holder of the CA's certificate and the secret: %v", err)
	} else {
		conn.Close()
	}
	other := newTestCA(t, "another CA").config(t, "n9")
	// Trusting the cluster CA, but presenting another's certificate: the
	// listener's own check refuses it.
	foreign := good.Clone()
	foreign.GetClientCertificate = other.GetClientCertificate
	for name, d := range map[string]clusterDialer{
		"no TLS":                       {secret: testSecret},
		"a certificate of another CA":  {secret: testSecret, tls: other},
		"a foreign client certificate": {secret: testSecret, tls: foreign},
		"the wrong secret":             {secret: []byte("wrong-secret-wrong-secret"), tls: good},
	} {
		for _, kind := range []byte{kindRaft, kindRPC, kindBody} {
			wantRefused(t, d, l.ClusterAddr(), kind, fmt.Sprintf("%s, kind %c", name, kind))
		}
	}
}

// A node without cluster TLS refuses a TLS peer (the reverse is in
// TestClusterOverTLS): a half-switched pair cannot talk, whichever side
// dials.
func TestClusterTLSOnOneSideOnly(t *testing.T) {
	c := newTestCluster(t, 1)
	plain := c.leader(5 * time.Second)
	ca := newTestCA(t, "cluster CA")
	_, err := (clusterDialer{secret: testSecret, tls: ca.config(t, "n2")}).dial(ctxT(t, 5*time.Second), plain.ClusterAddr(), kindRPC)
	if !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("TLS to a plain node: %v, want ErrUnauthenticated", err)
	}
}

func TestClusterTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, caFile := newTestCA(t, "ca").Issue(t, dir, "n1")
	notPEM := filepath.Join(dir, "empty.crt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, files := range map[string][3]string{
		"missing certificate": {filepath.Join(dir, "none.crt"), keyFile, caFile},
		"key of another file": {certFile, caFile, caFile},
		"missing CA":          {certFile, keyFile, filepath.Join(dir, "none.crt")},
		"CA without PEM":      {certFile, keyFile, notPEM},
	} {
		if _, err := ClusterTLSConfig(files[0], files[1], files[2]); !errors.Is(err, ErrClusterTLS) {
			t.Errorf("%s: %v, want ErrClusterTLS", name, err)
		}
	}
	if _, err := ClusterTLSConfig(certFile, keyFile, caFile); err != nil {
		t.Fatal(err)
	}
}

// The dialer checks the listener's certificate too: a listener that knows
// the secret but holds no certificate of the cluster CA is not a node.
func TestClusterTLSChecksTheListener(t *testing.T) {
	rogue := newTestCA(t, "rogue CA").config(t, "rogue")
	srv := rogue.Clone()
	srv.ClientAuth, srv.VerifyConnection = tls.NoClientCert, nil
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go acceptEach(ln, func(conn net.Conn) {
		defer conn.Close()
		serverHandshake(conn, testSecret, nil, time.Now().Add(handshake))
	})
	d := clusterDialer{secret: testSecret, tls: newTestCA(t, "cluster CA").config(t, "n1")}
	wantRefused(t, d, ln.Addr().String(), kindRPC, "a listener without a certificate of the cluster CA")
}

// A relay that holds a certificate of the cluster CA but not the secret
// sits between a node's dialer and another node, passing the handshake's
// bytes along over two TLS sessions of its own. The proofs are bound to
// each session, so neither end admits the other.
func TestClusterTLSHandshakeCannotBeRelayed(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	c := newTestClusterWith(t, 1, func(cfg *Config) { cfg.ClusterTLS = ca.config(t, cfg.ID) })
	target := c.leader(5 * time.Second)
	relayCfg := ca.config(t, "relay")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", relayCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go acceptEach(ln, func(in net.Conn) {
		out, err := tls.Dial("tcp", target.ClusterAddr(), relayCfg)
		if err != nil {
			in.Close()
			return
		}
		go func() { io.Copy(out, in); out.Close() }()
		io.Copy(in, out)
		in.Close()
	})
	d := clusterDialer{secret: testSecret, tls: ca.config(t, "n2")}
	wantRefused(t, d, ln.Addr().String(), kindRPC, "a relayed handshake")
	// The same dialer straight to the node is admitted.
	if conn, err := d.dial(ctxT(t, 10*time.Second), target.ClusterAddr(), kindRPC); err != nil {
		t.Fatal(err)
	} else {
		conn.Close()
	}
}

// acceptEach hands every connection ln accepts to its own goroutine,
// until ln closes.
func acceptEach(ln net.Listener, handle func(net.Conn)) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go handle(conn)
	}
}

// wantRefused dials addr with d and fails unless the handshake is
// refused as unauthenticated.
func wantRefused(t *testing.T, d clusterDialer, addr string, kind byte, what string) {
	t.Helper()
	conn, err := d.dial(ctxT(t, 10*time.Second), addr, kind)
	if err == nil {
		conn.Close()
		t.Fatalf("%s: admitted", what)
	}
	if !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("%s: %v, want ErrUnauthenticated", what, err)
	}
}
