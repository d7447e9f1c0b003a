package check

import (
	"path/filepath"
	"testing"
)

func store(b *hb, p int, id, md string, typ OpType, fs ...string) {
	b.inv(p, FStoreFlags, "a", msg(id), mode(md), flags(fs...))
	b.op(p, typ, FStoreFlags, "a", msg(id))
}

func readFlags(b *hb, p int, id string, fs ...string) {
	b.inv(p, FReadFlags, "a", msg(id)).ok(p, FReadFlags, "a", msg(id), flags(fs...))
}

func TestFlagsValid(t *testing.T) {
	b := &hb{}
	// Delivered with \Draft; flags compare case-insensitively.
	b.deliver(0, "a", "m1", OK, flags(`\Draft`))
	readFlags(b, 0, "m1", `\draft`)
	store(b, 0, "m1", ModeAdd, OK, `\Seen`)
	readFlags(b, 1, "m1", `\Draft`, `\Seen`, `\Recent`)
	// Overlapping add and remove; reads during and after see one order.
	b.inv(1, FStoreFlags, "a", msg("m1"), mode(ModeAdd), flags(`\Flagged`))
	b.inv(2, FStoreFlags, "a", msg("m1"), mode(ModeRemove), flags(`\Flagged`, `\Draft`))
	b.inv(3, FReadFlags, "a", msg("m1"))
	b.ok(3, FReadFlags, "a", flags(`\Seen`))
	b.ok(1, FStoreFlags, "a").ok(2, FStoreFlags, "a")
	readFlags(b, 3, "m1", `\Seen`, `\Flagged`)
	// An Info set that took effect, and one on m2 that did not.
	store(b, 4, "m1", ModeSet, Info, "$Junk")
	readFlags(b, 3, "m1", "$junk")
	store(b, 5, "m2", ModeSet, Info, `\Deleted`)
	readFlags(b, 3, "m2")
	// A failed store had no effect; a failed read says nothing.
	store(b, 6, "m2", ModeAdd, Fail, `\Seen`)
	b.inv(6, FReadFlags, "a", msg("m2")).fail(6, FReadFlags, "a")
	readFlags(b, 3, "m2")
	r := CheckFlags(b.h, Options{})
	wantValid(t, r)
	wantCounts(t, r, map[string]int{"keys": 2, "info": 2, "dropped": 2})
}

func TestFlagsNotLinearizable(t *testing.T) {
	b := &hb{}
	b.deliver(0, "a", "m1", OK)
	store(b, 0, "m1", ModeSet, OK, `\Seen`, `\Answered`)
	readFlags(b, 1, "m1", `\Seen`)
	store(b, 0, "m1", ModeAdd, OK, `\Flagged`)
	readFlags(b, 2, "m1", `\Answered`, `\Flagged`, `\Seen`)
	dir := t.TempDir()
	r := CheckFlags(b.h, Options{VisualizeDir: dir})
	wantInvalid(t, r, map[string]int{CountNonLinearizable: 1})
	wantArtifact(t, r, filepath.Join(dir, NameFlags+".html"))
}

func TestFlagsLostUpdate(t *testing.T) {
	// Two sequential adds; the later read lost the first one.
	b := &hb{}
	store(b, 0, "m1", ModeAdd, OK, `\Seen`)
	store(b, 1, "m1", ModeAdd, OK, `\Flagged`)
	readFlags(b, 2, "m1", `\Flagged`)
	wantInvalid(t, CheckFlags(b.h, Options{}), map[string]int{CountNonLinearizable: 1})
}

func TestFlagsBadMode(t *testing.T) {
	b := &hb{}
	store(b, 0, "m1", "toggle", OK, `\Seen`)
	wantInvalid(t, CheckFlags(b.h, Options{}), map[string]int{CountMalformed: 1})
}
