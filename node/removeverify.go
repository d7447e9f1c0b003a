package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"powermail/fsm"
)

// A removal's body check reads copies back. A listing says a node holds
// a verified copy, but a copy can rot or vanish silently (the scrub
// reaches it only at ScrubRate, the audit only before a scrub pass), and
// a removal that counted such a listing took the body's only good copy
// out of the cluster. So every body listed on the node being removed
// needs another copy that the node holding it reads back and checks
// against the hash now (verifyOn: the `storage verify` RPC). When none
// does but the node being removed answers, its copy is copied to another
// member first, as repair does (copyReplica: the target fetches, checks
// the hash and fsyncs before it is listed), so the removal goes ahead
// with the body whole; otherwise the removal is refused.

// removalCheck is one look at the bodies listed on the node being
// removed.
type removalCheck struct {
	id      string          // the node being removed
	up      map[string]bool // members whose copies may count (answeringMembers)
	live    liveness
	copyOK  bool            // id answers: a body may be copied from it
	before  *verifiedCopies // the first look's findings (nil: this is the first)
	found   *verifiedCopies // this look's
	mu      sync.Mutex      // guards the counts below
	bodies  int64           // listed on id
	copied  int64           // copied from id to another member first
	strand  removalShortfall
	unknown removalShortfall // other copies listed, none verified
}

// removalShortfall counts the bodies a look found wanting, and names the
// first in hash order.
type removalShortfall struct {
	count int64
	first string
}

func (s *removalShortfall) add(hash string) {
	if s.count == 0 || hash < s.first {
		s.first = hash
	}
	s.count++
}

// checkRemovalBodies looks at every referenced body listed on id: none
// may be left without another listed copy on a member in rc.up, and one
// of those copies must verify (or be made, from id, and verified by its
// new holder). It reads every body record once and the other copies of
// id's bodies with verifyWorkers at once, as `storage verify` does.
func (n *Node) checkRemovalBodies(ctx context.Context, rc *removalCheck) error {
	start := time.Now()
	work := make(chan fsm.BodyRecord)
	var wg sync.WaitGroup
	for range verifyWorkers {
		wg.Go(func() {
			for rec := range work {
				n.checkRemovalBody(ctx, rc, rec)
			}
		})
	}
	err := n.scanReferenced(ctx, func(rec fsm.BodyRecord) error {
		if !slices.Contains(rec.Replicas, rc.id) {
			return nil
		}
		rc.mu.Lock()
		rc.bodies++
		rc.mu.Unlock()
		select {
		case work <- rec:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(work)
	wg.Wait()
	rc.found.sort()
	if err == nil {
		err = ctx.Err() // a check cut short proves nothing
	}
	n.log.Info("removal checked the copies of a node's bodies", "id", rc.id, "bodies", rc.bodies,
		"copied", rc.copied, "stranded", rc.strand.count, "unverified", rc.unknown.count,
		"second_look", rc.before != nil, "took", time.Since(start).Round(time.Millisecond), "err", err)
	return err
}

// checkRemovalBody checks one body listed on rc.id.
func (n *Node) checkRemovalBody(ctx context.Context, rc *removalCheck, rec fsm.BodyRecord) {
	for try := range removalCopyTries {
		others := rc.others(rec)
		if len(others) == 0 && try == 0 {
			// No other copy was listed: a known shortage, for the
			// operator to settle (raise R, bring replicas back), not a
			// drain of the node inside a removal. (One whose other copy
			// failed the check below and was unlisted meanwhile, by its
			// holder or by the scrub, is copied.)
			rc.note(&rc.strand, rec.Hash)
			return
		}
		if who, ok := rc.before.lookup(rec.Hash); ok && slices.Contains(others, who) {
			rc.found.add(rec.Hash, who)
			return
		}
		for _, id := range others {
			if n.verifyOn(ctx, rc.live.members[id], rec.Hash) == nil {
				rc.found.add(rec.Hash, id)
				return
			}
		}
		if !rc.copyOK || ctx.Err() != nil {
			break
		}
		target, err := n.copyFromRemoved(ctx, rc, rec)
		if err == nil {
			rc.found.add(rec.Hash, target)
			rc.mu.Lock()
			rc.copied++
			rc.mu.Unlock()
			return
		}
		if !errors.Is(err, errMoot) {
			n.log.Warn("removal: copying a body whose other copies did not verify failed", "body", rec.Hash, "from", rc.id, "err", err)
			break
		}
		// The listing changed while the copy waited: look again.
		cur, referenced := n.currentBody(ctx, rec)
		if !referenced {
			return // nothing to keep
		}
		rec = cur
	}
	rc.note(&rc.unknown, rec.Hash)
}

// removalCopyTries bounds the looks at one body whose listing keeps
// changing under a removal's copy.
const removalCopyTries = 3

// others is the members besides rc.id listed for rec whose copies may
// count.
func (rc *removalCheck) others(rec fsm.BodyRecord) []string {
	var out []string
	for _, r := range rec.Replicas {
		if r != rc.id && rc.up[r] {
			out = append(out, r)
		}
	}
	return out
}

func (rc *removalCheck) note(s *removalShortfall, hash string) {
	rc.mu.Lock()
	s.add(hash)
	rc.mu.Unlock()
}

// copyFromRemoved copies rec from rc.id to a member that counts for the
// removal and does not list it, returning the member. errMoot: the body
// changed meanwhile (listed elsewhere, no longer referenced).
func (n *Node) copyFromRemoved(ctx context.Context, rc *removalCheck, rec fsm.BodyRecord) (string, error) {
	var errs []error
	for _, target := range n.repairTargets(rc.live, rec.Replicas) {
		if !rc.up[target.ID] {
			continue
		}
		err := n.copyReplica(ctx, rc.live, rec, []string{rc.id}, target, nil)
		if err == nil || errors.Is(err, errMoot) || ctx.Err() != nil {
			return target.ID, err
		}
		errs = append(errs, fmt.Errorf("to %s: %w", target.ID, err))
	}
	if errs == nil {
		return "", errors.New("no member that answers lacks the body and has room for it")
	}
	return "", errors.Join(errs...)
}

// refusal is the removal's error for the bodies this look found
// wanting, nil when there are none.
func (rc *removalCheck) refusal() error {
	var msgs []string
	if s := rc.strand; s.count > 0 {
		msgs = append(msgs, fmt.Sprintf(
			"%s holds the only healthy copy of %d bodies (first %s): raise the replication factor and let repair copy them, or bring their other replicas back (a member that restarted counts once its listing audit has finished), first",
			rc.id, s.count, s.first))
	}
	if s := rc.unknown; s.count > 0 {
		why := "copying them from it to another member first failed (the leader's log says why)"
		switch {
		case rc.before != nil:
			why = "it was left a member, so repair or a second try can copy them from it"
		case !rc.copyOK:
			why = "it does not answer, so they could not be copied from it first"
		}
		msgs = append(msgs, fmt.Sprintf(
			"%d bodies listed on %s have no other copy that verifies now (first %s; corrupt, missing, or on a member that did not answer the check): %s; `storage verify` names the copies that fail",
			s.count, rc.id, s.first, why))
	}
	if msgs == nil {
		return nil
	}
	msgs = append(msgs, "or remove it with --force and lose them")
	return &fsm.Error{Kind: fsm.ErrInvalid, Msg: strings.Join(msgs, "; ")}
}

// verifiedCopies records, per body, a member whose copy verified during
// one look, so that the second look (once no delivery can list the
// removed node) reads again only what changed: 18 bytes a body, kept
// sorted by hash for lookups.
type verifiedCopies struct {
	mu   sync.Mutex
	ids  []string
	seen []verifiedCopy
}

// verifiedCopy is a body (the first 16 bytes of its hash: two bodies
// sharing them are out of anyone's reach) and the index in ids of its
// verified copy.
type verifiedCopy struct {
	key [16]byte
	who uint16
}

func hashKey(hash string) ([16]byte, bool) {
	var k [16]byte
	raw, err := hex.DecodeString(hash)
	if err != nil || len(raw) < len(k) {
		return k, false
	}
	copy(k[:], raw)
	return k, true
}

func (v *verifiedCopies) add(hash, id string) {
	k, ok := hashKey(hash)
	if !ok {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	i := slices.Index(v.ids, id)
	if i < 0 {
		i = len(v.ids)
		v.ids = append(v.ids, id)
	}
	v.seen = append(v.seen, verifiedCopy{key: k, who: uint16(i)})
}

// sort readies v for lookups, once its look has ended.
func (v *verifiedCopies) sort() {
	slices.SortFunc(v.seen, func(a, b verifiedCopy) int { return bytesCompare(a.key, b.key) })
}

func bytesCompare(a, b [16]byte) int {
	return slices.Compare(a[:], b[:])
}

// lookup is the member whose copy of hash verified in v's look; nil v
// knows none.
func (v *verifiedCopies) lookup(hash string) (string, bool) {
	if v == nil {
		return "", false
	}
	k, ok := hashKey(hash)
	if !ok {
		return "", false
	}
	i, found := slices.BinarySearchFunc(v.seen, k, func(e verifiedCopy, k [16]byte) int { return bytesCompare(e.key, k) })
	if !found {
		return "", false
	}
	return v.ids[v.seen[i].who], true
}
