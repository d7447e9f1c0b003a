package main

import (
	"crypto/x509"
	"fmt"

	"github.com/spf13/pflag"

	"powermail/node"
)

// tlsFlags name the PEM files of one TLS use: --<use>-tls-cert,
// --<use>-tls-key and --<use>-tls-ca.
//   - cluster: the cluster port (node/clustertls.go); all three go
//     together, and the CA alone says who is a node.
//   - admin: the admin API, HTTPS only; the CA is the one trusted when
//     joining through an https:// --join address.
type tlsFlags struct {
	use           string
	cert, key, ca string
	mode          string // cluster only: require or mixed
}

func (t *tlsFlags) register(fl *pflag.FlagSet, use, certHelp, caHelp string) {
	t.use = use
	fl.StringVar(&t.cert, t.name("cert"), "", certHelp)
	fl.StringVar(&t.key, t.name("key"), "", "PEM private key of "+t.flag("cert"))
	fl.StringVar(&t.ca, t.name("ca"), "", caHelp)
}

func (t *tlsFlags) name(file string) string { return t.use + "-tls-" + file }

func (t *tlsFlags) flag(file string) string { return "--" + t.name(file) }

func registerClusterTLS(t *tlsFlags, fl *pflag.FlagSet) {
	t.register(fl, "cluster",
		"PEM certificate of this node, issued by the cluster CA: with it, every cluster connection is TLS between holders of that CA's certificates (switch the nodes one at a time; the switched and the unswitched cannot talk)",
		"PEM certificate(s) of the cluster CA, which alone says who is a node (use a CA of the cluster's own); SIGHUP reads the three files again")
	fl.StringVar(&t.mode, "cluster-tls-mode", "", "require (the default with the files): TLS on every cluster connection; mixed: also admit plain ones and fall back to plain with a node that has not switched, only while switching a running cluster (until then an attacker on the path can force plain, which it can read and alter)")
}

func registerAdminTLS(t *tlsFlags, fl *pflag.FlagSet) {
	t.register(fl, "admin",
		"PEM certificate for the admin API: with it the API speaks HTTPS only (clients use --addr https://HOST:PORT); SIGHUP reads it and the key again",
		"PEM CA certificate(s) to trust when joining through an https:// --join address (default: the system's)")
}

// validate checks that the certificate and its key come together, and
// with caToo the CA as well.
func (t *tlsFlags) validate(caToo bool) error {
	switch {
	case t.mode != "" && t.mode != "require" && t.mode != "mixed":
		return fmt.Errorf("--%s-tls-mode must be require or mixed, not %q", t.use, t.mode)
	case t.mode != "" && t.cert == "":
		return fmt.Errorf("--%s-tls-mode %s needs %s", t.use, t.mode, t.flag("cert"))
	case caToo && ((t.cert == "") != (t.key == "") || (t.cert == "") != (t.ca == "")):
		return fmt.Errorf("%s, %s and %s go together", t.flag("cert"), t.flag("key"), t.flag("ca"))
	case (t.cert == "") != (t.key == ""):
		return fmt.Errorf("%s and %s go together", t.flag("cert"), t.flag("key"))
	}
	return nil
}

// files loads the certificate and key, which SIGHUP reads again, with the
// CA among them when withCA; nil without the flags.
func (t *tlsFlags) files(withCA bool) (*node.TLSFiles, error) {
	if t.cert == "" {
		return nil, nil
	}
	ca, names := "", t.flag("cert")+"/"+t.flag("key")
	if withCA {
		ca, names = t.ca, names+"/"+t.flag("ca")
	}
	f, err := node.LoadTLSFiles(t.cert, t.key, ca)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", names, err)
	}
	return f, nil
}

// roots loads the CA on its own; nil (the system's roots) without it.
func (t *tlsFlags) roots() (*x509.CertPool, error) {
	if t.ca == "" {
		return nil, nil
	}
	pool, err := node.LoadCertPool(t.ca)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.flag("ca"), err)
	}
	return pool, nil
}
