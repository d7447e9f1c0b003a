package fsm

import (
	"errors"
	"strings"
	"testing"
)

// writtenIn is the encoding a release that reads up to newest writes a
// raise of the command encoding to target in, as EncodeAs does from
// encoding 6 on (SettingsSet.needsEncoding): the target, or the newest it
// knows when it does not know the target.
func writtenIn(target, newest int) int { return min(target, newest) }

// TestEncodingRaiseAppliesAlikeAcrossReleases: every release that can
// decode a raise of the command encoding decides it alike, whichever
// release wrote it. The first rule refused a raise past the applying
// release's newest encoding: a raise to 9 proposed through a node of a
// release that reads up to 8 is written in 8 (which encodingraise's
// member check lets through, since the other members read 9); the nodes
// reading up to 8 refused it and those reading 9 would have taken it, and
// the cluster's settings would differ from node to node. Releases before
// the rule (up to encoding 8) are in the matrix as they are: they refuse
// every target above 8.
func TestEncodingRaiseAppliesAlikeAcrossReleases(t *testing.T) {
	for proposer := EncodingJSON8; proposer <= EncodingJSON8+4; proposer++ {
		for target := EncodingJSON6; target <= EncodingJSON8+6; target++ {
			written := writtenIn(target, proposer)
			decided := map[bool][]int{}
			for applier := EncodingJSON8; applier <= EncodingJSON8+4; applier++ {
				if written > applier {
					continue // this release stops on the entry
				}
				refused := raiseRefused(target, written, applier)
				decided[refused] = append(decided[refused], applier)
			}
			if len(decided) > 1 {
				t.Errorf("a raise to %d proposed by a release reading up to %d (written in %d): refused by releases reading up to %v, taken by %v",
					target, proposer, written, decided[true], decided[false])
			}
		}
	}
}

// TestEncodingRaiseWrittenBelowItsTarget: this release writes a raise
// past what it reads in its newest encoding, and apply refuses it; one
// it reads is taken.
func TestEncodingRaiseWrittenBelowItsTarget(t *testing.T) {
	a := newApplier(t)
	past := &SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: NewestEncoding + 1}}
	data, err := EncodeAs(past, NewestEncoding)
	if err != nil || int(data[1]) != NewestEncoding {
		t.Fatalf("raise past this release encoded in %v (%v), want %d", data[:min(len(data), 2)], err, NewestEncoding)
	}
	if r := a.applyAs(past, NewestEncoding); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("raise past this release: %+v, want ErrInvalid", r)
	}
	a.must(&SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: NewestEncoding}})
	if s, _ := a.s.Settings(); s.CommandEncoding != NewestEncoding {
		t.Fatalf("raise to %d left %d", NewestEncoding, s.CommandEncoding)
	}
}

// TestEncodingRaiseThroughAnOlderNodeSaysSo: a raise this release reads,
// written below its target (it came through a node of an older release),
// is refused with a reason an operator can act on; it said only "must be
// 0 to 11, not 11".
func TestEncodingRaiseThroughAnOlderNodeSaysSo(t *testing.T) {
	a := newApplier(t)
	data, err := EncodeAs(&SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: NewestEncoding}}, NewestEncoding)
	if err != nil {
		t.Fatal(err)
	}
	data[1] = EncodingJSON9 // as a release that reads up to 9 writes it
	a.index++
	r := a.s.ApplyBatch([]Entry{{Index: a.index, Data: data}})[0]
	if !errors.Is(r.Err, ErrInvalid) || !strings.Contains(r.Err.Error(), "proposed through a node that reads only up to 9") {
		t.Fatalf("raise to %d written in 9: %v", NewestEncoding, r.Err)
	}
}
