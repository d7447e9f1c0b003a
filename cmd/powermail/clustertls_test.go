package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// clusterCertFiles writes a cluster CA and one node certificate it
// signed (which every node of a test cluster may share) into dir.
func clusterCertFiles(t *testing.T, dir string) (cert, key, ca string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, nodeKey := newKey(), newKey()
	valid := func(serial int64, name string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	}
	caTmpl := valid(1, "test cluster CA")
	caTmpl.IsCA, caTmpl.BasicConstraintsValid, caTmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	nodeTmpl := valid(2, "node")
	nodeTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	nodeDER, err := x509.CreateCertificate(rand.Reader, nodeTmpl, caCert, &nodeKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, ca = filepath.Join(dir, "node.crt"), filepath.Join(dir, "node.key"), filepath.Join(dir, "ca.crt")
	for f, b := range map[string]*pem.Block{cert: {Type: "CERTIFICATE", Bytes: nodeDER}, key: {Type: "EC PRIVATE KEY", Bytes: keyDER}, ca: {Type: "CERTIFICATE", Bytes: caDER}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key, ca
}

// Three processes started with the cluster TLS flags form a cluster and
// deliver across it, and their cluster ports no longer speak the plain
// handshake.
func TestClusterTLSThroughTheBinary(t *testing.T) {
	cert, key, ca := clusterCertFiles(t, t.TempDir())
	ps := startMailClusterN(t, 3, "--cluster-tls-cert", cert, "--cluster-tls-key", key, "--cluster-tls-ca", ca)
	if code, msg := send(t, ps[1].smtp, "sender@elsewhere.net", []string{"alice@example.com"}, "Subject: over TLS\r\n\r\nHi.\r\n"); code != 250 {
		t.Fatalf("send: %d %s", code, msg)
	}
	for _, p := range ps {
		if m := messages(t, p.admin, "alice@example.com"); len(m) != 1 {
			t.Fatalf("alice on %s: %+v", p.id, m)
		}
	}
	// The plain handshake's opening gets no answer, only a closed
	// connection (a plain node answers it with 64 bytes).
	conn, err := net.DialTimeout("tcp", ps[0].cluster, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(append([]byte("PMC1H"), make([]byte, 32)...)); err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadFull(conn, make([]byte, 64)); err == nil {
		t.Fatalf("a plain handshake got %d bytes back", n)
	}
}
