package main

import (
	"crypto/x509"
	"fmt"

	"github.com/spf13/pflag"

	"powermail/node"
)

// adminTLSFlags put the admin API under HTTPS, and name the CA to trust
// when joining through a member's https:// admin address.
type adminTLSFlags struct {
	cert, key, ca string
}

func (a *adminTLSFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&a.cert, "admin-tls-cert", "", "PEM certificate for the admin API: with it the API speaks HTTPS only (clients use --addr https://HOST:PORT); SIGHUP reads it and the key again")
	fl.StringVar(&a.key, "admin-tls-key", "", "PEM private key of --admin-tls-cert")
	fl.StringVar(&a.ca, "admin-tls-ca", "", "PEM CA certificate(s) to trust when joining through an https:// --join address (default: the system's)")
}

// validate checks that the certificate and its key come together.
func (a *adminTLSFlags) validate() error {
	if (a.cert == "") != (a.key == "") {
		return fmt.Errorf("--admin-tls-cert and --admin-tls-key go together")
	}
	return nil
}

// files loads the admin API's certificate; nil without the flags.
func (a *adminTLSFlags) files() (*node.TLSFiles, error) {
	if a.cert == "" {
		return nil, nil
	}
	f, err := node.LoadTLSFiles(a.cert, a.key, "")
	if err != nil {
		return nil, fmt.Errorf("--admin-tls-cert/--admin-tls-key: %w", err)
	}
	return f, nil
}

// roots loads --admin-tls-ca; nil (the system's roots) without it.
func (a *adminTLSFlags) roots() (*x509.CertPool, error) {
	if a.ca == "" {
		return nil, nil
	}
	pool, err := node.LoadCertPool(a.ca)
	if err != nil {
		return nil, fmt.Errorf("--admin-tls-ca: %w", err)
	}
	return pool, nil
}
