package node

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"powermail/fsm"
)

// Sender Rewriting Scheme (SRS, Shevek's "Sender Rewriting Scheme"
// paper, libsrs2 conventions). Forwarded mail leaves with the envelope
// sender rewritten into one of our domains, so the receiver's SPF check
// (RFC 7208) sees our servers sending for our domain:
//
//	SRS0=HHHH=TT=orig-domain=orig-local@srs-domain
//
// TT is the day (mod 1024) in two base32 characters; HHHH the first eight
// base64 characters of HMAC-SHA1 over TT, domain and local part, keyed by
// a key derived from the cluster secret, compared case-insensitively
// because some servers fold local parts. A bounce to such an address is
// accepted only with a valid hash younger than srsMaxAge, so the scheme
// opens no relay: nobody else can mint addresses we will route. (Four
// characters, as libsrs2 writes and earlier releases minted, folded to
// about two million values, few enough to guess with RCPT as the oracle;
// they are still taken for srsMaxAge days after a node first ran with
// long hashes, so that bounces to addresses minted before still arrive.)

// ErrSRS: an SRS address with a bad hash, a bad shape or an expired stamp.
var ErrSRS = errors.New("invalid SRS address")

const (
	srsMaxAge       = 21 // days
	srsHashLen      = 8
	srsShortHashLen = 4 // earlier releases' (see above)
	srsBase32       = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	srsDayCycle     = 1024
)

func (n *Node) srsKey() []byte {
	m := hmac.New(sha1.New, n.cfg.Secret)
	m.Write([]byte("powermail srs key"))
	return m.Sum(nil)
}

func srsHash(key []byte, parts ...string) string {
	m := hmac.New(sha1.New, key)
	for _, p := range parts {
		m.Write([]byte(strings.ToLower(p)))
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))[:srsHashLen]
}

// srsShortUntil is until when this node takes the short hashes earlier
// releases minted: srsMaxAge days after it first started minting long
// ones, which the data directory records (marker file, RFC 3339).
func srsShortUntil(dataDir string, now time.Time) (time.Time, error) {
	p := filepath.Join(dataDir, "srs-long-hashes")
	if raw, err := os.ReadFile(p); err == nil {
		if t, perr := time.Parse(time.RFC3339, strings.TrimSpace(string(raw))); perr == nil {
			return t, nil
		}
	}
	until := now.Add(srsMaxAge * 24 * time.Hour).UTC().Truncate(time.Second)
	if err := os.WriteFile(p, []byte(until.Format(time.RFC3339)+"\n"), 0o600); err != nil {
		return time.Time{}, fmt.Errorf("record the SRS hash length: %w", err)
	}
	return until, nil
}

func srsStamp(now time.Time) string {
	d := now.Unix() / 86400 % srsDayCycle
	return string([]byte{srsBase32[d>>5], srsBase32[d&31]})
}

func srsStampAge(tt string, now time.Time) (int64, bool) {
	if len(tt) != 2 {
		return 0, false
	}
	hi, lo := strings.IndexByte(srsBase32, upper(tt[0])), strings.IndexByte(srsBase32, upper(tt[1]))
	if hi < 0 || lo < 0 {
		return 0, false
	}
	today := now.Unix() / 86400 % srsDayCycle
	return (today - int64(hi<<5|lo) + srsDayCycle) % srsDayCycle, true
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// srsForward rewrites sender for forwarding through domain. The null
// sender stays null (a bounce must not be bounced), and so does a sender
// in a domain we host when its user submitted the message (submitted).
// Relayed mail is rewritten whatever its sender claims: a message that
// came from elsewhere naming one of our domains must not leave with our
// domain's envelope, which SPF and DMARC would take for ours.
func (n *Node) srsForward(sender, domain string, submitted bool, now time.Time) string {
	at := strings.LastIndexByte(sender, '@')
	if sender == "" || at <= 0 || domain == "" {
		return sender
	}
	local, sdom := sender[:at], sender[at+1:]
	// The directory holds a domain by its A-labels; a sender under
	// SMTPUTF8 may name it in Unicode.
	if _, err := n.state.Domain(asciiName(strings.ToLower(sdom))); err == nil && submitted {
		return sender
	}
	tt := srsStamp(now)
	h := srsHash(n.srsKey(), tt, sdom, local)
	return fmt.Sprintf("SRS0=%s=%s=%s=%s@%s", h, tt, sdom, local, domain)
}

// srsReverse decodes an SRS0 address at one of our domains. ok is false
// for an address that is not SRS (or not in a hosted domain); err is set
// for one that is SRS but invalid.
func (n *Node) srsReverse(rcpt string) (orig string, ok bool, err error) {
	at := strings.LastIndexByte(rcpt, '@')
	if at <= 5 || !strings.EqualFold(rcpt[:5], "SRS0=") {
		return "", false, nil
	}
	if _, derr := n.state.Domain(strings.ToLower(rcpt[at+1:])); derr != nil {
		return "", false, nil
	}
	// Separators after SRS0 may be '=', '-' or '+' in other
	// implementations; ours writes '=' and reads only what it writes.
	f := strings.SplitN(rcpt[5:at], "=", 4)
	if len(f) != 4 || f[2] == "" || f[3] == "" {
		return "", true, fmt.Errorf("%w: %s", ErrSRS, rcpt)
	}
	hash, tt, dom, local := f[0], f[1], f[2], f[3]
	// A stamp of the next day reads as srsDayCycle-1 days old: a node
	// whose clock is ahead minted it just after midnight, by its clock.
	age, good := srsStampAge(tt, time.Now())
	if !good || (age > srsMaxAge && age != srsDayCycle-1) {
		return "", true, fmt.Errorf("%w: %s: stamp expired", ErrSRS, rcpt)
	}
	want := srsHash(n.srsKey(), tt, dom, local)
	if len(hash) == srsShortHashLen && time.Now().Before(n.srsShortUntil) {
		want = want[:srsShortHashLen]
	}
	if !hmac.Equal([]byte(strings.ToLower(hash)), []byte(strings.ToLower(want))) {
		return "", true, fmt.Errorf("%w: %s: bad hash", ErrSRS, rcpt)
	}
	return local + "@" + dom, true, nil
}

// srsDomain is the domain rewritten senders use.
func (n *Node) srsDomain() string {
	if d := n.cfg.Queue.SRSDomain; d != "" {
		return d
	}
	if ds, err := n.state.Domains("", 1); err == nil && len(ds) > 0 {
		return ds[0].Name
	}
	return ""
}

// maxSRSDepth bounds how many of our own SRS wrappings resolveBounce
// takes off one address.
const maxSRSDepth = 8

// resolveBounce routes mail to a decoded SRS address (or to the sender
// of a failed message): to the original sender's mailbox if it is ours,
// else out through the queue. An address that is itself one of our SRS
// addresses is decoded first, as often as it was wrapped: mail we
// forwarded can come back through a provider that forwards without
// rewriting, keep our SRS sender, and be forwarded (wrapped) again. The
// address names no mailbox, so its notices were dropped and bounces to
// it refused. Each layer's hash is checked, so this opens no relay.
func (n *Node) resolveBounce(ctx context.Context, orig string) (Resolution, error) {
	for range maxSRSDepth {
		inner, ok, err := n.srsReverse(orig)
		if !ok || err != nil {
			break // not ours, or invalid: resolved as it is, so unknown
		}
		orig = inner
	}
	res, err := n.resolveLocal(orig, resolveRemoving)
	if errors.Is(err, ErrNotLocal) {
		return Resolution{External: []string{orig}}, nil
	}
	if err == nil || errors.Is(err, ErrUnavailable) {
		return res, err
	}
	if berr := n.Barrier(ctx); berr != nil {
		return Resolution{}, fmt.Errorf("%w: %v", ErrUnavailable, berr)
	}
	return n.resolveLocal(orig, resolveRemoving)
}

// remoteLongLocal reports whether addr is another host's address whose
// local part is longer than 64 octets, which the state's lookup refuses
// as no mailbox of ours can have it, and which the queue takes from
// command encoding 15 (fsm.ParseRemoteAddress): resolveLocal then calls
// it not local, as any address elsewhere. Such addresses are real:
// another forwarder's SRS address of a long sender, or ours wrapped
// around one, as each forward of a message wraps it again, and the
// per-thread reply addresses of notification services.
func (n *Node) remoteLongLocal(addr string) bool {
	a, err := fsm.ParseRemoteAddress(asciiAddress(addr))
	if err != nil || !n.encodingAtLeast(fsm.EncodingJSON15) {
		return false
	}
	_, derr := n.state.Domain(a.Domain)
	return errors.Is(derr, fsm.ErrNotFound)
}
