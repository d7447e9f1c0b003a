package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// Mail the queue sends for one of our senders carries a DKIM signature
// of the sender's domain that verifies against the published key, with
// our Received: stamp above it; forwarded mail from another domain is
// not signed.
func TestQueueSignsOwnSendersWithDKIM(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "dkim.key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := ParseDKIMKey("Example.com:s2026:" + keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s := newSink(t)
	c := queueCluster(t, s, func(q *QueueConfig) { q.DKIM = []DKIMKey{key} })
	l := c.leader(time.Second)
	deliverOut(t, l, nil, "x@elsewhere.net") // submitted by a@example.com
	sendVia(t, l, "someone@far.org", fwdBody, "out@example.com")
	sendVia(t, l, "ceo@example.com", fwdBody, "out@example.com") // relayed: anyone may claim it
	waitFor(t, 10*time.Second, "all three sent", func() bool { return len(s.messages()) == 3 })

	lookup := func(domain string) ([]string, error) {
		if domain != "s2026._domainkey.example.com" {
			return nil, errors.New("no such record: " + domain)
		}
		return []string{"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}, nil
	}
	signed := 0
	for _, m := range s.messages() {
		vs, err := dkim.VerifyWithOptions(strings.NewReader(m.data), &dkim.VerifyOptions{LookupTXT: lookup})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case m.from == "a@example.com":
			if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.com" {
				t.Fatalf("our sender's mail: %+v\n%s", vs, m.data)
			}
			if !strings.HasPrefix(m.data, "Received: by ") || strings.Index(m.data, "DKIM-Signature:") < strings.Index(m.data, "Received:") {
				t.Errorf("the stamp is not above the signature:\n%s", m.data)
			}
			signed++
		case len(vs) != 0:
			t.Fatalf("relayed mail from %s was signed: %+v", m.from, vs)
		case !strings.HasPrefix(m.from, "SRS0="):
			t.Fatalf("relayed mail left with the sender %s", m.from)
		}
	}
	if signed != 1 {
		t.Fatalf("%d signed messages, want 1", signed)
	}
	for _, bad := range []string{"example.com:s1", "example.com:s1:" + filepath.Join(t.TempDir(), "none.key")} {
		if _, err := ParseDKIMKey(bad); !errors.Is(err, ErrDKIMKey) {
			t.Errorf("ParseDKIMKey(%q): %v", bad, err)
		}
	}
}
