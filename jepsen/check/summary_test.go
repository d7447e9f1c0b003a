package check

import (
	"strings"
	"testing"
)

func TestSummaryAndAllValid(t *testing.T) {
	pass := Result{Name: "alpha", Valid: true, Counts: map[string]int{"b": 2, "a": 1}}
	fail := Result{Name: "beta", Counts: map[string]int{"lost": 1}, Errors: []string{"lost m1"}, Artifacts: []string{"/tmp/x.html"}}
	out := Summary([]Result{pass, fail})
	for _, want := range []string{"CHECKER", "alpha", "PASS", "a=1 b=2", "beta", "FAIL", "lost=1",
		"  - lost m1", "see /tmp/x.html", "overall: FAIL"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if !AllValid([]Result{pass}) || AllValid([]Result{pass, fail}) || AllValid(nil) {
		t.Error("AllValid: wrong verdict")
	}
	if !strings.HasSuffix(Summary([]Result{pass}), "overall: PASS\n") {
		t.Error("a passing summary must end with overall: PASS")
	}
}

// TestCheckAllOnMixedHistory runs every checker over one history that
// interleaves all workloads, as the harness will produce.
func TestCheckAllOnMixedHistory(t *testing.T) {
	b := &hb{}
	b.inv(0, FDirAdd, "box").inv(1, FDeliver, "a", msg("m1"))
	b.ok(0, FDirAdd, "box").ok(1, FDeliver, "a", assigned(1))
	store(b, 2, "m1", ModeAdd, OK, `\Seen`)
	b.deliver(3, "a", "m2", Info)
	readFlags(b, 2, "m1", `\Seen`)
	b.inv(0, FDirRead, "box").ok(0, FDirRead, "box", exists(true))
	finalReads(b, "a")
	for i := len(b.h) - 6; i < len(b.h); i++ {
		b.h[i].UIDValidity, b.h[i].Messages = 1, []Message{m(1, "m1"), m(2, "m2")}
	}
	results := CheckAll(b.h, Options{})
	if len(results) != 5 || !AllValid(results) {
		t.Fatalf("mixed history rejected:\n%s", Summary(results))
	}
	if results[0].Counts[CountRecovered] != 1 {
		t.Errorf("m2 should be recovered: %v", results[0].Counts)
	}
}
