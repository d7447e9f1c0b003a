package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/emersion/go-msgauth/dkim"

	"powermail/fsm"
)

// DKIM (RFC 6376). Mail the queue sends for one of our own senders (what
// users submit) is signed with the key of the sender's domain, so that
// receivers can check it came from us and DMARC can align it. Forwarded
// mail from other domains is sent as it came: its own signatures still
// hold, and ours would not align.
//
// Invariants: the signature covers exactly the bytes sent after it (the
// stored message without the Return-Path of final delivery); our
// Received: stamp goes above it and is not signed. A message is read
// twice from the store, once to sign and once to send (and its header
// section once more, to count its fields for h=), and never held.
// A signed message that ends inside its header section (no body) is
// signed and sent with the blank line that closes it (headerEnded).

// ErrDKIMKey reports an unusable --dkim setting.
var ErrDKIMKey = errors.New("invalid DKIM key setting")

// DKIMKey signs the mail of one domain.
type DKIMKey struct {
	Domain, Selector string
	Signer           crypto.Signer
}

// dkimHeaders are the fields signed (RFC 6376 §5.4.1): those that say
// who, to whom, what and when, each listed once more than the message has
// it (dkimHeaderKeys) so that none can be added later. List-* fields are
// left out: a list that adds them would break its members' signatures.
var dkimHeaders = []string{"From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding"}

// ParseDKIMKey reads "domain:selector:keyfile", the key a PEM private key
// (PKCS #8 RSA or Ed25519, or PKCS #1 RSA).
func ParseDKIMKey(spec string) (DKIMKey, error) {
	parts := strings.SplitN(spec, ":", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return DKIMKey{}, fmt.Errorf("%w: %q is not domain:selector:keyfile", ErrDKIMKey, spec)
	}
	raw, err := os.ReadFile(parts[2])
	if err != nil {
		return DKIMKey{}, fmt.Errorf("%w: %w", ErrDKIMKey, err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return DKIMKey{}, fmt.Errorf("%w: no PEM block in %s", ErrDKIMKey, parts[2])
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			return DKIMKey{}, fmt.Errorf("%w: %s: %w", ErrDKIMKey, parts[2], err)
		}
	}
	// d= names the domain by its A-labels (RFC 8616 §4), as the
	// directory does.
	domain := asciiName(strings.ToLower(parts[0]))
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return DKIMKey{Domain: domain, Selector: parts[1], Signer: k}, nil
	case ed25519.PrivateKey:
		return DKIMKey{Domain: domain, Selector: parts[1], Signer: k}, nil
	}
	return DKIMKey{}, fmt.Errorf("%w: %s holds a %T, not an RSA or Ed25519 key", ErrDKIMKey, parts[2], key)
}

// dkimKeysFor is the keys of e's sender's domain, none for most. Only a
// submitted message is signed: anything relayed (a forward of mail from
// elsewhere) may claim any sender, one of ours included, and a signature
// would vouch for it (DMARC would pass a forgery). Our own notices are
// signed when they are composed (signDSN).
func (n *Node) dkimKeysFor(e fsm.QueueEntry) []DKIMKey {
	at := strings.LastIndexByte(e.From, '@')
	if at < 0 || !e.Submitted {
		return nil
	}
	return n.dkimKeysOf(e.From[at+1:])
}

// dkimKeysOf is the keys of domain. A domain may have several keys:
// during a rotation's overlap, or RSA beside Ed25519 for verifiers
// without it (RFC 8463 §4); each signs.
func (n *Node) dkimKeysOf(domain string) []DKIMKey {
	domain = asciiName(strings.ToLower(domain)) // a Unicode name under SMTPUTF8
	var keys []DKIMKey
	for _, k := range n.cfg.Queue.DKIM {
		if k.Domain == domain {
			keys = append(keys, k)
		}
	}
	return keys
}

// dkimSignature signs the message of e as it will be sent and returns the
// DKIM-Signature fields, one per key of e's sender's domain ("" when it
// has none).
func (n *Node) dkimSignature(ctx context.Context, e fsm.QueueEntry) (string, error) {
	keys := n.dkimKeysFor(e)
	if len(keys) == 0 {
		return "", nil
	}
	fields, err := n.dkimHeaderKeys(ctx, e.Hash)
	if err != nil {
		return "", err
	}
	rd, err := n.openBody(ctx, e.Hash)
	if err != nil {
		return "", err
	}
	defer rd.Close()
	br := bufio.NewReader(rd)
	if err := skipReturnPath(br); err != nil {
		return "", err
	}
	return dkimSign(keys, fields, newHeaderEnded(br))
}

// dkimSign returns the DKIM-Signature fields of msg, one per key, each
// signing fields (the h= tag). The keys' signers read msg in one pass.
func dkimSign(keys []DKIMKey, fields []string, msg io.Reader) (string, error) {
	signers := make([]*dkim.Signer, 0, len(keys))
	defer func() {
		for _, s := range signers {
			s.Close() // a no-op once closed; ends a failed signer's goroutine
		}
	}()
	ws := make([]io.Writer, 0, len(keys))
	for _, key := range keys {
		s, err := dkim.NewSigner(&dkim.SignOptions{Domain: key.Domain, Selector: key.Selector, Signer: key.Signer,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
			HeaderKeys: fields})
		if err != nil {
			return "", fmt.Errorf("dkim: %w", err)
		}
		signers, ws = append(signers, s), append(ws, s)
	}
	if _, err := io.Copy(io.MultiWriter(ws...), msg); err != nil {
		return "", fmt.Errorf("dkim: %w", err)
	}
	var sig strings.Builder
	for _, s := range signers {
		if err := s.Close(); err != nil {
			return "", fmt.Errorf("dkim: %w", err)
		}
		sig.WriteString(s.Signature())
	}
	return sig.String(), nil
}

// dkimHeaderKeys is the h= tag for the stored message hash: each of
// dkimHeaders once more than the message's header section has it (RFC
// 6376 §5.4.2, §8.15). A verifier takes the last instance of a field for
// each listing and an empty one past the first, so a field can be added
// neither where it is absent nor above one that is present (a second
// From: or Subject: that many readers show instead of the signed one).
// It reads the header section only, a line at a time.
func (n *Node) dkimHeaderKeys(ctx context.Context, hash string) ([]string, error) {
	rd, err := n.openBody(ctx, hash)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return dkimFieldsOf(bufio.NewReader(rd))
}

// dkimFieldsOf is the h= tag for the message br starts with.
func dkimFieldsOf(br *bufio.Reader) ([]string, error) {
	count, err := headerFieldCounts(br)
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	var keys []string
	for _, k := range dkimHeaders {
		for range count[strings.ToLower(k)] + 1 {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// headerFieldCounts counts the fields of the header section br starts
// with, by lower-cased name (blanks before the colon dropped, as the
// signer does, RFC 5322 §4.5.6).
func headerFieldCounts(br *bufio.Reader) (map[string]int, error) {
	count := map[string]int{}
	midLine := false // the last slice ended inside a line longer than br's buffer
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if !midLine {
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				return count, nil // the blank line, or the end
			}
			if name, _, ok := bytes.Cut(line, []byte(":")); ok && line[0] != ' ' && line[0] != '\t' {
				count[strings.ToLower(strings.TrimRight(string(name), " \t"))]++
			}
		}
		if errors.Is(err, io.EOF) {
			return count, nil
		}
		midLine = errors.Is(err, bufio.ErrBufferFull)
	}
}
