package main

import (
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"powermail/node/testcerts"
)

// A node reads its TLS files again on SIGHUP: STARTTLS and the cluster
// port present the renewed certificates without a restart, a broken
// renewal leaves the running ones in place, and the signal never stops
// the node.
func TestCertificatesReloadOnSIGHUP(t *testing.T) {
	dir, renewed := t.TempDir(), t.TempDir()
	ca := testcerts.NewCA(t, "test CA")
	cert, key, _ := ca.Issue(t, dir, "mx")
	ccert, ckey, cca := ca.Issue(t, dir, "node")
	ps := startMailClusterN(t, 3, "--tls-cert", cert, "--tls-key", key,
		"--cluster-tls-cert", ccert, "--cluster-tls-key", ckey, "--cluster-tls-ca", cca)
	n1 := ps[0]
	before := startTLSCert(t, n1.smtp, ca.Pool()).SerialNumber
	clusterBefore := clusterSerial(t, n1.cluster, ca)

	// Renew both: new files over the old paths, as certbot or an ACME
	// client's deploy hook would.
	for _, name := range []string{"mx", "node"} {
		c, k, _ := ca.Issue(t, renewed, name)
		replace(t, c, dir+"/"+name+".crt")
		replace(t, k, dir+"/"+name+".key")
	}
	if got := startTLSCert(t, n1.smtp, ca.Pool()).SerialNumber; got.Cmp(before) != 0 {
		t.Fatalf("the certificate changed before any signal: %v -> %v", before, got)
	}
	hangup(t, n1)
	renewedCert := waitCertChange(t, func() *x509.Certificate { return startTLSCert(t, n1.smtp, ca.Pool()) }, before)
	after := renewedCert.SerialNumber
	if got := clusterSerial(t, n1.cluster, ca); got.Cmp(clusterBefore) == 0 {
		t.Fatalf("the cluster port still presents serial %v after SIGHUP", got)
	}
	var metrics string
	admin(t, n1.admin, "/metrics", &metrics)
	gauge := `powermail_tls_certificate_expiry_timestamp_seconds{use="client"} ` + strconv.FormatFloat(float64(renewedCert.NotAfter.Unix()), 'g', -1, 64)
	if !strings.Contains(metrics, gauge) {
		t.Errorf("no %q in /metrics:\n%s", gauge, grepLines(metrics, "expiry"))
	}

	// A broken renewal: the key no longer matches. The node keeps the
	// certificate it has, says why, and keeps delivering.
	other, _, _ := ca.Issue(t, renewed, "stray")
	replace(t, other, dir+"/mx.crt")
	hangup(t, n1)
	waitLog(t, n1, "TLS files not reloaded")
	if got := startTLSCert(t, n1.smtp, ca.Pool()).SerialNumber; got.Cmp(after) != 0 {
		t.Fatalf("a failed reload changed the certificate: %v -> %v", after, got)
	}
	if code, msg := send(t, n1.smtp, "sender@elsewhere.net", []string{"alice@example.com"}, "Subject: after reloads\r\n\r\nHi.\r\n"); code != 250 {
		t.Fatalf("send after reloads: %d %s", code, msg)
	}
}

func replace(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func hangup(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// startTLSCert is the certificate addr's SMTP server presents in
// STARTTLS, checked against roots.
func startTLSCert(t *testing.T, addr string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: "localhost", RootCAs: roots}); err != nil {
		t.Fatal(err)
	}
	cs, _ := c.TLSConnectionState()
	return cs.PeerCertificates[0]
}

// clusterSerial is the serial number of the certificate addr's cluster
// port presents to a holder of a certificate of ca.
func clusterSerial(t *testing.T, addr string, ca *testcerts.CA) *big.Int {
	t.Helper()
	cf, kf, _ := ca.Issue(t, t.TempDir(), "probe")
	pair, err := tls.LoadX509KeyPair(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: ca.Pool(), ServerName: "node"})
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

func waitCertChange(t *testing.T, cert func() *x509.Certificate, old *big.Int) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := cert()
		if c.SerialNumber.Cmp(old) != 0 {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serial %v 10s after SIGHUP", old)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitLog(t *testing.T, p *proc, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.log.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %q; its log:\n%s", p.id, text, p.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
