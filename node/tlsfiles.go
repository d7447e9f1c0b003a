package node

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TLS files a running node reads again. Certificates are renewed every
// few weeks (ACME issues them for 90 days or less), and restarting a mail
// node to pick up a renewal drops its sessions; so the files behind the
// client protocols' TLS and behind cluster TLS are read again on Reload
// (the server calls it on SIGHUP).
//
// Invariants:
//   - A handshake presents the pair that was current when it started;
//     sessions already established keep theirs.
//   - Reload replaces the certificate, its key and the CA together, or
//     not at all: a file that does not load, a key that does not match,
//     or (with a CA) a certificate the new CA does not vouch for leaves
//     the running set in place and returns the reason.

// ErrTLSFiles reports TLS files that cannot be used.
var ErrTLSFiles = errors.New("unusable TLS files")

// TLSFiles is a certificate, its private key and optionally a CA bundle,
// read from PEM files.
type TLSFiles struct {
	certFile, keyFile, caFile string
	cur                       atomic.Pointer[tlsCreds]
}

// tlsCreds is one consistent reading of the files.
type tlsCreds struct {
	pair  *tls.Certificate
	roots *x509.CertPool // nil without a CA file
}

// LoadTLSFiles reads certFile and keyFile, and caFile unless it is empty.
func LoadTLSFiles(certFile, keyFile, caFile string) (*TLSFiles, error) {
	f := &TLSFiles{certFile: certFile, keyFile: keyFile, caFile: caFile}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads the files again; on error the previous reading stays.
func (f *TLSFiles) Reload() error {
	pair, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrTLSFiles, f.certFile, err)
	}
	c := &tlsCreds{pair: &pair}
	if f.caFile != "" {
		if c.roots, err = LoadCertPool(f.caFile); err != nil {
			return err
		}
		// A certificate its own CA refuses would cut this node off from
		// every peer holding the same CA.
		if err := verifyChain(pair.Certificate, c.roots); err != nil {
			return fmt.Errorf("%w: %s is not issued by %s: %w", ErrTLSFiles, f.certFile, f.caFile, err)
		}
	}
	f.cur.Store(c)
	return nil
}

// LoadCertPool reads a bundle of PEM CA certificates.
func LoadCertPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: CA: %w", ErrTLSFiles, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: CA: no PEM certificate in %s", ErrTLSFiles, file)
	}
	return pool, nil
}

// Leaf is the current certificate.
func (f *TLSFiles) Leaf() *x509.Certificate { return f.cur.Load().pair.Leaf }

// ServerConfig is a config for the client protocols' listeners (TLS 1.2
// and later) that presents the current certificate.
func (f *TLSFiles) ServerConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: f.serverCert}
}

func (f *TLSFiles) serverCert(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cur.Load().pair, nil
}

func (f *TLSFiles) clientCert(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return f.cur.Load().pair, nil
}

// verifyChain checks a DER chain (leaf first) against roots alone: no
// host name, any key usage.
func verifyChain(chain [][]byte, roots *x509.CertPool) error {
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		certs[i] = c
	}
	return verifyCerts(certs, roots)
}

func verifyCerts(certs []*x509.Certificate, roots *x509.CertPool) error {
	if len(certs) == 0 {
		return errors.New("no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := certs[0].Verify(opts)
	return err
}

// ExpiryGauge reports the current certificate's expiry as
// powermail_tls_certificate_expiry_timestamp_seconds{use=use}, for alerts
// ahead of a renewal that did not happen.
func (f *TLSFiles) ExpiryGauge(use string) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "powermail_tls_certificate_expiry_timestamp_seconds",
		Help:        "Unix time at which the certificate in use expires.",
		ConstLabels: prometheus.Labels{"use": use},
	}, func() float64 { return float64(f.Leaf().NotAfter.Unix()) })
}

// ExpiresIn is the time left on the current certificate.
func (f *TLSFiles) ExpiresIn(now time.Time) time.Duration { return f.Leaf().NotAfter.Sub(now) }
