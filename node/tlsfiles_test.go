package node

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A cluster CA is rolled over without a restart: the node first trusts a
// bundle of the old and the new CA, then takes a certificate of the new
// one, each on Reload. A renewal its CA does not vouch for, or a broken
// file, is refused and the running certificate stays.
func TestClusterTLSReloadRollsTheCA(t *testing.T) {
	dir := t.TempDir()
	oldCA, newCA := newTestCA(t, "old CA"), newTestCA(t, "new CA")
	certFile, keyFile, caFile := oldCA.Issue(t, dir, "n1")
	files, err := LoadTLSFiles(certFile, keyFile, caFile)
	if err != nil {
		t.Fatal(err)
	}
	c := newTestClusterWith(t, 1, func(cfg *Config) { cfg.ClusterTLS = files.ClusterConfig() })
	addr := c.nodes["n1"].ClusterAddr()

	// A peer already on the new CA, trusting both.
	bundle := filepath.Join(t.TempDir(), "bundle.crt")
	writeFile(t, bundle, append(append([]byte{}, oldCA.PEM...), newCA.PEM...))
	pc, pk, _ := newCA.Issue(t, t.TempDir(), "n2")
	peerFiles, err := LoadTLSFiles(pc, pk, bundle)
	if err != nil {
		t.Fatal(err)
	}
	peer := clusterDialer{secret: testSecret, tls: peerFiles.ClusterConfig()}
	wantRefused(t, peer, addr, kindRPC, "a new-CA peer before the bundle")

	writeFile(t, caFile, readFile(t, bundle))
	if err := files.Reload(); err != nil {
		t.Fatal(err)
	}
	wantAdmitted(t, peer, addr)

	// The node's own certificate from the new CA.
	renewed, renewedKey, _ := newCA.Issue(t, t.TempDir(), "n1")
	writeFile(t, certFile, readFile(t, renewed))
	writeFile(t, keyFile, readFile(t, renewedKey))
	if err := files.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := files.Leaf().Issuer.CommonName; got != "new CA" {
		t.Fatalf("issuer after reload: %q", got)
	}
	wantAdmitted(t, peer, addr)

	// Refused: a certificate of a CA the node does not trust, and a key
	// that does not match.
	stray, strayKey, _ := newTestCA(t, "stray CA").Issue(t, t.TempDir(), "n1")
	writeFile(t, certFile, readFile(t, stray))
	writeFile(t, keyFile, readFile(t, strayKey))
	if err := files.Reload(); !errors.Is(err, ErrTLSFiles) {
		t.Fatalf("a stray CA's certificate: %v, want ErrTLSFiles", err)
	}
	writeFile(t, keyFile, readFile(t, renewedKey))
	if err := files.Reload(); !errors.Is(err, ErrTLSFiles) {
		t.Fatalf("a key of another certificate: %v, want ErrTLSFiles", err)
	}
	if got := files.Leaf().Issuer.CommonName; got != "new CA" {
		t.Fatalf("a refused reload replaced the certificate: issuer %q", got)
	}
	wantAdmitted(t, peer, addr)
}

// The client protocols' config presents whatever was last loaded.
func TestServerConfigPresentsTheReloadedCertificate(t *testing.T) {
	ca := newTestCA(t, "CA")
	dir := t.TempDir()
	certFile, keyFile, _ := ca.Issue(t, dir, "mx")
	files, err := LoadTLSFiles(certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg := files.ServerConfig()
	first := presented(t, cfg)
	renewed, renewedKey, _ := ca.Issue(t, t.TempDir(), "mx")
	writeFile(t, certFile, readFile(t, renewed))
	writeFile(t, keyFile, readFile(t, renewedKey))
	if got := presented(t, cfg); got != first {
		t.Fatal("the files were read again without Reload")
	}
	if err := files.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := presented(t, cfg); got == first {
		t.Fatal("Reload did not change the certificate presented")
	}
	if left := files.ExpiresIn(time.Now()); left <= 0 || left > time.Hour {
		t.Fatalf("ExpiresIn: %v", left)
	}
}

// presented is the serial number of the certificate a handshake with cfg
// presents.
func presented(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	cert, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return cert.Leaf.SerialNumber.String()
}

func wantAdmitted(t *testing.T, d clusterDialer, addr string) {
	t.Helper()
	conn, err := d.dial(ctxT(t, 10*time.Second), addr, kindRPC)
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	conn.Close()
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
