package frontend

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

	"powermail/fsm"
	"powermail/node"
	"powermail/node/nodetest"
)

// testDKIMKey writes a new Ed25519 key for domain (selector s1) as
// --dkim reads it, and returns it with its TXT record's text.
func testDKIMKey(t *testing.T, domain string) (node.DKIMKey, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), domain+".key")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := node.ParseDKIMKey(domain + ":s1:" + file)
	if err != nil {
		t.Fatal(err)
	}
	return key, "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
}

// Mail a user submits as her alias in another hosted domain leaves
// signed by that domain's key, the one DMARC aligns with the alias in
// From:, and not by her mailbox's domain's: the queue signs for the
// envelope sender's domain (node/dkim.go), and the envelope sender is
// the alias. Submitted over TCP, sent by the queue to another SMTP
// server, verified by an independent verifier.
func TestSubmissionAsAnAliasIsSignedByItsDomain(t *testing.T) {
	sink := newFakeDeliverer()
	sink.set(func(f *fakeDeliverer) { f.directory["friend@elsewhere.net"] = []string{"friend@elsewhere.net"} })
	_, sinkAddr := startServer(t, testConfig(), sink)

	comKey, comTXT := testDKIMKey(t, "example.com")
	orgKey, orgTXT := testDKIMKey(t, "example.org")
	c := nodetest.StartWith(t, 1, func(cfg *node.Config) {
		cfg.Queue = node.QueueConfig{Hostname: "mx.example.com", Interval: 50 * time.Millisecond,
			RetryMin: 100 * time.Millisecond, RetryMax: 300 * time.Millisecond, DialTimeout: time.Second,
			DestOverride: map[string]string{"elsewhere.net": sinkAddr}, DKIM: []node.DKIMKey{comKey, orgKey}}
	})
	c.AddMailboxes("pw-alice", "alice@example.com")
	c.Apply(&fsm.DomainAdd{Name: "example.org"})
	c.Apply(&fsm.ForwardAdd{Address: "hello@example.org", Targets: []string{"alice@example.com"}})
	addr := startSubmission(t, c.Nodes[0], c.Nodes[0])

	cl := authPlain(t, addr, "alice@example.com", "pw-alice", 235, "2.0.0")
	r := cl.transaction("hello@example.org", []string{"friend@elsewhere.net"},
		"From: Hello <hello@example.org>\r\nTo: friend@elsewhere.net\r\nSubject: hi\r\n\r\nFrom our other domain.\r\n")
	checkReply(t, "DATA as hello@example.org", r, 250, "2.0.0")

	deadline := time.Now().Add(10 * time.Second)
	for len(sink.allDeliveries()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the queue did not send the message")
		}
		time.Sleep(20 * time.Millisecond)
	}
	d := sink.allDeliveries()[0]
	if d.msg.From != "hello@example.org" {
		t.Errorf("sent with the envelope sender %q", d.msg.From)
	}
	lookup := func(name string) ([]string, error) {
		switch name {
		case "s1._domainkey.example.com":
			return []string{comTXT}, nil
		case "s1._domainkey.example.org":
			return []string{orgTXT}, nil
		}
		return nil, errors.New("no such record: " + name)
	}
	vs, err := dkim.VerifyWithOptions(strings.NewReader(string(d.body)), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.org" {
		t.Fatalf("signatures %+v, want one of example.org that verifies:\n%s", vs, d.body)
	}
}
