package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The secret file holds the cluster secret, which is also the admin
// token: a server started with one that every user of the host may read
// says so. (The start then fails on missing cluster TLS files, after the
// secret is read and before a node opens.)
func TestServerWarnsOfAWorldReadableSecretFile(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		mode os.FileMode
		warn bool
	}{{0o644, true}, {0o640, false}, {0o600, false}} {
		file := filepath.Join(dir, "secret")
		os.Remove(file)
		if err := os.WriteFile(file, []byte(cliSecret+"\n"), c.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, c.mode); err != nil { // past the umask
			t.Fatal(err)
		}
		missing := filepath.Join(dir, "missing.pem")
		cmd := exec.Command(binary, "server", "--id", "n1", "--data", filepath.Join(dir, "data"),
			"--secret-file", file, "--huge-pages=false", "--timer-slack=0",
			"--cluster-tls-cert", missing, "--cluster-tls-key", missing, "--cluster-tls-ca", missing)
		cmd.Env = append(os.Environ(), "POWERMAIL_SECRET=")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "missing.pem") {
			t.Fatalf("mode %v: %v, %s; want the start to fail on the TLS files", c.mode, err, out)
		}
		if got := strings.Contains(string(out), "readable by every user"); got != c.warn {
			t.Errorf("mode %v: warning %v, want %v: %s", c.mode, got, c.warn, out)
		}
	}
}
