package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
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
)

// Mail the queue sends for one of our senders carries a DKIM signature
// of the sender's domain that verifies against the published key, with
// our Received: stamp above it; forwarded mail from another domain is
// not signed.
func TestQueueSignsOwnSendersWithDKIM(t *testing.T) {
	key, lookup := dkimTestKeyFor(t, "Example.com") // the domain as an operator may write it
	s := newSink(t)
	c := queueCluster(t, s, func(q *QueueConfig) { q.DKIM = []DKIMKey{key} })
	l := c.leader(time.Second)
	deliverOut(t, l, nil, "x@elsewhere.net") // submitted by a@example.com
	sendVia(t, l, "someone@far.org", fwdBody, "out@example.com")
	sendVia(t, l, "ceo@example.com", fwdBody, "out@example.com") // relayed: anyone may claim it
	waitFor(t, 10*time.Second, "all three sent", func() bool { return len(s.messages()) == 3 })

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

// writeDKIMKeyFile writes a new Ed25519 private key as PKCS #8 PEM, as
// --dkim reads it, and returns its public half and the file's path.
func writeDKIMKeyFile(t *testing.T) (ed25519.PublicKey, string) {
	t.Helper()
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
	return pub, keyFile
}

// dkimTestKey writes an Ed25519 key for example.com (selector s2026) and
// returns it with a TXT lookup that publishes its public half, for an
// independent verifier.
func dkimTestKey(t *testing.T) (DKIMKey, func(string) ([]string, error)) {
	t.Helper()
	return dkimTestKeyFor(t, "example.com")
}

// dkimTestKeyFor is dkimTestKey for domain, spelt in the key's
// configuration as given; the lookup publishes it under the lower-case
// name, as DNS names are compared.
func dkimTestKeyFor(t *testing.T, domain string) (DKIMKey, func(string) ([]string, error)) {
	t.Helper()
	pub, keyFile := writeDKIMKeyFile(t)
	key, err := ParseDKIMKey(domain + ":s2026:" + keyFile)
	if err != nil {
		t.Fatal(err)
	}
	published := "s2026._domainkey." + strings.ToLower(domain)
	lookup := func(name string) ([]string, error) {
		if name != published {
			return nil, errors.New("no such record: " + name)
		}
		return []string{"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}, nil
	}
	return key, lookup
}

// submitOut queues body as a@example.com's submitted message to targets.
func submitOut(t *testing.T, n *Node, body string, targets ...string) {
	t.Helper()
	msg := Message{From: "a@example.com", External: targets, Received: time.Now(), Submitted: true}
	if _, err := n.Deliver(ctxT(t, 10*time.Second), msg, strings.NewReader("Return-Path: <a@example.com>\r\n"+body)); err != nil {
		t.Fatal(err)
	}
}

// dkimVerify checks the one signature of data with the independent
// verifier, and fails the test unless it holds.
func dkimVerify(t *testing.T, data string, lookup func(string) ([]string, error)) {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(strings.NewReader(data), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil || len(vs) != 1 || vs[0].Err != nil {
		if len(vs) == 1 {
			err = vs[0].Err
		}
		t.Fatalf("signature does not verify (%d signatures): %v\n%q", len(vs), err, data)
	}
}

// Every message a user can submit leaves signed, and the signature
// verifies on the bytes as the receiver gets them: a message of header
// fields only (RFC 5322 §3.5: the body, and the blank line before it,
// are optional), one with bare LF line ends, and one with a long field.
func TestQueueDKIMSignsOddMessages(t *testing.T) {
	key, lookup := dkimTestKey(t)
	s := newSink(t)
	c := queueCluster(t, s, func(q *QueueConfig) { q.DKIM = []DKIMKey{key} })
	l := c.leader(time.Second)
	bodies := []string{
		"From: a@example.com\r\nSubject: headers only\r\n",
		"From: a@example.com\r\nSubject: no line end",
		"From: a@example.com\nSubject: bare LF\n\nline one\nline two\n",
		"From: a@example.com\r\nSubject: empty body\r\n\r\n",
		"From: a@example.com\r\nTo: " + strings.Repeat("someone@elsewhere.net, ", 40) + "x@elsewhere.net\r\nSubject: long\r\n\r\nhi\r\n",
	}
	for _, b := range bodies {
		submitOut(t, l, b, "x@elsewhere.net")
	}
	waitFor(t, 10*time.Second, "all sent", func() bool { return len(s.messages()) == len(bodies) })
	for _, m := range s.messages() {
		dkimVerify(t, m.data, lookup)
	}
}

// A field that may appear once is signed once more than it appears
// (RFC 6376 §8.15), so that a second From: or Subject: added above the
// signed one, which many readers show instead, breaks the signature.
func TestQueueDKIMOversignsFields(t *testing.T) {
	key, lookup := dkimTestKey(t)
	s := newSink(t)
	c := queueCluster(t, s, func(q *QueueConfig) { q.DKIM = []DKIMKey{key} })
	l := c.leader(time.Second)
	submitOut(t, l, "From: a@example.com\r\nTo: x@elsewhere.net\r\nSubject: pay invoice 1\r\n\r\nhi\r\n", "x@elsewhere.net")
	waitFor(t, 10*time.Second, "sent", func() bool { return len(s.messages()) == 1 })
	data := s.messages()[0].data
	dkimVerify(t, data, lookup)
	for _, added := range []string{"From: boss@example.com\r\n", "Subject: pay invoice 2\r\n", "Reply-To: thief@far.org\r\n", "Sender: boss@example.com\r\n"} {
		forged := added + data
		vs, err := dkim.VerifyWithOptions(strings.NewReader(forged), &dkim.VerifyOptions{LookupTXT: lookup})
		if err == nil && len(vs) == 1 && vs[0].Err == nil {
			t.Errorf("the signature still holds with %q added", added)
		}
	}
}

// Two --dkim keys for one domain (a rotation's overlap, or RSA beside
// Ed25519 for verifiers that lack it, RFC 8463 §4) each sign the message:
// the second key must not be ignored in silence.
func TestQueueDKIMSignsWithEveryKeyOfTheDomain(t *testing.T) {
	edKey, edLookup := dkimTestKey(t)
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "rsa.key")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaPriv)}), 0o600); err != nil {
		t.Fatal(err)
	}
	rsaKey, err := ParseDKIMKey("example.com:r2026:" + keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&rsaPriv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(domain string) ([]string, error) {
		if domain == "r2026._domainkey.example.com" {
			return []string{"v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pubDER)}, nil
		}
		return edLookup(domain)
	}
	s := newSink(t)
	c := queueCluster(t, s, func(q *QueueConfig) { q.DKIM = []DKIMKey{rsaKey, edKey} })
	submitOut(t, c.leader(time.Second), "From: a@example.com\r\nSubject: twice\r\n\r\nhi\r\n", "x@elsewhere.net")
	waitFor(t, 10*time.Second, "sent", func() bool { return len(s.messages()) == 1 })
	vs, err := dkim.VerifyWithOptions(strings.NewReader(s.messages()[0].data), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Err != nil {
			t.Errorf("a signature fails: %v", v.Err)
		}
	}
	if len(vs) != 2 {
		t.Fatalf("%d signatures, want one per key:\n%s", len(vs), s.messages()[0].data)
	}
}

// A user of an internationalised domain may submit (SMTPUTF8) naming the
// domain in Unicode, while the directory and the --dkim key hold its
// A-labels (RFC 5890). The message is still our own: it is signed, with
// the A-label d= RFC 8616 §4 asks for, and leaves with its sender, not
// an SRS address that would take its SPF and DMARC alignment away.
func TestQueueTreatsAUnicodeSenderDomainAsOurs(t *testing.T) {
	key, _ := dkimTestKey(t)
	key.Domain = "xn--bcher-kva.example"
	c := newTestClusterWith(t, 1, func(cfg *Config) { cfg.Queue.DKIM = []DKIMKey{key} })
	n := c.leader(5 * time.Second)
	mustApply(t, n, &fsm.DomainAdd{Name: "xn--bcher-kva.example"})
	const sender = "a@bücher.example"
	if got := n.srsForward(sender, "xn--bcher-kva.example", true, time.Now()); got != sender {
		t.Errorf("a submitted sender of our IDN domain left as %s", got)
	}
	if keys := n.dkimKeysFor(fsm.QueueEntry{From: sender, Submitted: true}); len(keys) != 1 {
		t.Errorf("a submitted sender of our IDN domain has %d DKIM keys, want 1", len(keys))
	}
	_, keyFile := writeDKIMKeyFile(t)
	if k, err := ParseDKIMKey("Bücher.example:s1:" + keyFile); err != nil || k.Domain != "xn--bcher-kva.example" {
		t.Errorf("a --dkim key for a Unicode domain signs as %q (%v), want its A-labels", k.Domain, err)
	}
}

// A notice we compose is signed by the key of its From: domain (the SRS
// domain), so that DMARC can align on it and not only on SPF; a relayed
// bounce, which may claim to be from anyone, stays unsigned.
func TestQueueSignsItsOwnNotices(t *testing.T) {
	key, lookup := dkimTestKey(t)
	s := newSink(t)
	s.set("550")
	c := queueCluster(t, s, func(q *QueueConfig) { q.DKIM = []DKIMKey{key} })
	l := c.leader(time.Second)
	sendVia(t, c.follower(), "a@example.com", fwdBody, "out@example.com")
	dsn := onlyDSN(t, c, l)
	dkimVerify(t, dsn, lookup)
	if !strings.HasPrefix(dsn, "DKIM-Signature:") || !strings.Contains(dsn, "From: Mail Delivery System <MAILER-DAEMON@example.com>") {
		t.Fatalf("notice:\n%s", dsn)
	}

	s.set("")
	sendVia(t, l, "", "From: MAILER-DAEMON@example.com\r\nSubject: bounce\r\n\r\nforged\r\n", "out@example.com")
	waitFor(t, 10*time.Second, "relayed bounce sent", func() bool { return len(s.messages()) == 1 })
	vs, err := dkim.VerifyWithOptions(strings.NewReader(s.messages()[0].data), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil || len(vs) != 0 {
		t.Fatalf("a relayed bounce was signed (%v): %+v", err, vs)
	}
}
