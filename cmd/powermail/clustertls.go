package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"powermail/node"
)

// clusterTLSFlags put the cluster port under TLS (node/clustertls.go):
// all three files, or none.
type clusterTLSFlags struct {
	cert, key, ca string
}

func (c *clusterTLSFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&c.cert, "cluster-tls-cert", "", "PEM certificate of this node, issued by the cluster CA: with it, every cluster connection is TLS between holders of that CA's certificates (switch the nodes one at a time; the switched and the unswitched cannot talk)")
	fl.StringVar(&c.key, "cluster-tls-key", "", "PEM private key of --cluster-tls-cert")
	fl.StringVar(&c.ca, "cluster-tls-ca", "", "PEM certificate(s) of the cluster CA, which alone says who is a node (use a CA of the cluster's own); SIGHUP reads the three files again")
}

// validate checks that the files come together.
func (c *clusterTLSFlags) validate() error {
	if (c.cert == "") != (c.key == "") || (c.cert == "") != (c.ca == "") {
		return fmt.Errorf("--cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca go together")
	}
	return nil
}

// files loads the node's cluster TLS files, which SIGHUP reads again;
// nil without the flags.
func (c *clusterTLSFlags) files() (*node.TLSFiles, error) {
	if c.cert == "" {
		return nil, nil
	}
	f, err := node.LoadTLSFiles(c.cert, c.key, c.ca)
	if err != nil {
		return nil, fmt.Errorf("--cluster-tls-cert/--cluster-tls-key/--cluster-tls-ca: %w", err)
	}
	return f, nil
}
