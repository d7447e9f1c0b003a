package storage

import (
	"context"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Damage flips one data byte of the first chunk of body h and leaves its
// checksum, exactly what a bad disk sector does. It exists for fault
// injection (the jepsen harness and redundancy tests, through an admin
// endpoint the operator must enable); nothing else calls it.
func (s *Store) Damage(ctx context.Context, h Hash) error {
	return s.damageChunk(ctx, h, 0, func(_ uint64, key, v []byte) error {
		v = slices.Clone(v)
		v[len(v)-1] ^= 0x20
		return s.db.Set(key, v, pebble.Sync)
	})
}

// damageChunk hands chunk idx of body h (its write id, key and stored
// value) to damage, under the body's lock.
func (s *Store) damageChunk(ctx context.Context, h Hash, idx uint32, damage func(id uint64, key, v []byte) error) error {
	release, err := s.enterHash(ctx, h)
	if err != nil {
		return err
	}
	defer release()
	m, ok, err := s.manifest(h)
	if err != nil || !ok {
		return fmt.Errorf("storage: damage %s: %w", h, orNotFound(err, h))
	}
	key := chunkKey(m.id, idx)
	v, ok, err := s.get(key)
	if err != nil || !ok || len(v) <= chunkHeaderLen {
		return fmt.Errorf("storage: damage %s: no chunk %d (%v)", h, idx, err)
	}
	return damage(m.id, key, v)
}

func orNotFound(err error, h Hash) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: %s", ErrNotFound, h)
}

// DamageManifest flips one byte of body h's manifest, so that the body
// can no longer be located or judged; fault injection, like Damage.
func (s *Store) DamageManifest(ctx context.Context, h Hash) error {
	release, err := s.enterHash(ctx, h)
	if err != nil {
		return err
	}
	defer release()
	v, ok, err := s.get(manifestKey(h))
	if err != nil || !ok {
		return fmt.Errorf("storage: damage manifest %s: %w", h, orNotFound(err, h))
	}
	v = slices.Clone(v)
	v[5] ^= 0x01
	return s.db.Set(manifestKey(h), v, pebble.Sync)
}

// DamageKeepCRC flips one data byte of chunk idx of body h and stores the
// chunk with a checksum that matches the flipped data, so only the
// whole-body hash can tell; fault injection, like Damage (a bit flipped
// in memory before the checksum was taken looks like this).
func (s *Store) DamageKeepCRC(ctx context.Context, h Hash, idx uint32) error {
	return s.damageChunk(ctx, h, idx, func(id uint64, _, v []byte) error {
		data := slices.Clone(v[chunkHeaderLen:])
		data[0] ^= 0x20
		b := s.db.NewBatch()
		defer b.Close()
		if err := putChunk(b, id, idx, data); err != nil {
			return err
		}
		return b.Commit(pebble.Sync)
	})
}
