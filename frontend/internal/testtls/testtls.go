// Package testtls makes throwaway TLS certificates for protocol tests.
package testtls

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"powermail/node/testcerts"
)

// Config returns a server config with a fresh certificate for mx.test,
// localhost and 127.0.0.1, valid for an hour, and a pool that trusts it
// (for the client side).
func Config(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	ca := testcerts.NewCA(t, "test CA")
	certFile, keyFile, _ := ca.Issue(t, t.TempDir(), "mx.test")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}}, ca.Pool()
}
