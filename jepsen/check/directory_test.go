package check

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func TestDirectoryValid(t *testing.T) {
	b := &hb{}
	// Sequential life cycle.
	b.inv(0, FDirAdd, "k1").ok(0, FDirAdd, "k1")
	b.inv(0, FDirRead, "k1").ok(0, FDirRead, "k1", exists(true))
	b.inv(0, FDirRemove, "k1").ok(0, FDirRemove, "k1")
	b.inv(0, FDirRemove, "k1").fail(0, FDirRemove, "k1", errCode(ErrNotFound))
	// Two concurrent adds: one wins; a read overlapping both sees either.
	b.inv(1, FDirAdd, "k2").inv(2, FDirAdd, "k2").inv(3, FDirRead, "k2")
	b.fail(2, FDirAdd, "k2", errCode(ErrExists)).ok(3, FDirRead, "k2", exists(true)).ok(1, FDirAdd, "k2")
	// An Info add that took effect, one that did not, one that took
	// effect long after it timed out.
	b.inv(4, FDirAdd, "k3").info(4, FDirAdd, "k3")
	b.inv(5, FDirRead, "k3").ok(5, FDirRead, "k3", exists(true))
	b.inv(6, FDirAdd, "k4").info(6, FDirAdd, "k4", errCode("timeout"))
	b.inv(7, FDirRead, "k4").ok(7, FDirRead, "k4", exists(false))
	b.inv(7, FDirRead, "k4").ok(7, FDirRead, "k4", exists(true))
	// A definite failure without a meaningful code had no effect.
	b.inv(8, FDirAdd, "k5").fail(8, FDirAdd, "k5", errCode("451 no leader"))
	b.inv(8, FDirRead, "k5").ok(8, FDirRead, "k5", exists(false))
	// A pending remove.
	b.inv(9, FDirRemove, "k2")
	r := CheckDirectory(b.h, Options{})
	wantValid(t, r)
	wantCounts(t, r, map[string]int{"keys": 5, "info": 3, "dropped": 1})
}

func TestDirectoryNotLinearizable(t *testing.T) {
	b := &hb{}
	b.inv(0, FDirAdd, "k1").ok(0, FDirAdd, "k1")
	b.inv(1, FDirRead, "k1").ok(1, FDirRead, "k1", exists(false)) // stale read after the add
	b.inv(0, FDirAdd, "k2").ok(0, FDirAdd, "k2")
	dir := filepath.Join(t.TempDir(), "viz")
	r := CheckDirectory(b.h, Options{VisualizeDir: dir})
	wantInvalid(t, r, map[string]int{CountNonLinearizable: 1})
	wantArtifact(t, r, filepath.Join(dir, NameDirectory+".html"))
}

func TestDirectoryDoubleCreate(t *testing.T) {
	b := &hb{}
	b.inv(0, FDirAdd, "k").ok(0, FDirAdd, "k")
	b.inv(1, FDirAdd, "k").ok(1, FDirAdd, "k") // should have failed with exists
	wantInvalid(t, CheckDirectory(b.h, Options{}), map[string]int{CountNonLinearizable: 1})
}

func TestDirectoryMalformedRead(t *testing.T) {
	b := &hb{}
	b.inv(0, FDirRead, "k").ok(0, FDirRead, "k")
	wantInvalid(t, CheckDirectory(b.h, Options{}), map[string]int{CountMalformed: 1})
}

func TestLinearTimeoutIsUnknown(t *testing.T) {
	ops := []porcupine.Operation{{Input: dirInput{Key: "k", F: FDirRead}, Output: dirOutput{}, Call: 1, Return: 2}}
	past := time.Now().Add(-time.Second)
	if got := checkPart(directoryModel(), ops, time.Second, past); got != porcupine.Unknown {
		t.Fatalf("got %v after the deadline, want Unknown", got)
	}
	if got := checkPart(directoryModel(), ops, 0, past); got != porcupine.Ok {
		t.Fatalf("got %v without a timeout, want Ok", got)
	}
}

func wantArtifact(t *testing.T, r Result, path string) {
	t.Helper()
	if len(r.Artifacts) != 1 || r.Artifacts[0] != path {
		t.Fatalf("artifacts %q, want [%s]", r.Artifacts, path)
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() == 0 {
		t.Fatalf("visualisation %s: %v", path, err)
	}
}
