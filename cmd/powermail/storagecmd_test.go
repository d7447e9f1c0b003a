package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestStorageCommandsPrintTheirFigures: storage gc --json gives the
// counts the table gives (it printed only {"status":"ok"}), and storage
// repair prints counts as whole numbers (a million bodies came out as
// 1e+06, decoded as floats).
func TestStorageCommandsPrintTheirFigures(t *testing.T) {
	rec := &recorder{reply: `{"bodies":12,"freed_bytes":2048}`}
	addr := rec.start(t)
	var gc map[string]any
	if out := mustCLI(t, "storage", "gc", "--json", "--addr", addr); json.Unmarshal([]byte(out), &gc) != nil || gc["bodies"] != 12.0 || gc["freed_bytes"] != 2048.0 {
		t.Errorf("storage gc --json said %q", out)
	}
	rec = &recorder{reply: `{"bodies":12345678,"under_replicated":1000000,"unrepairable":0,"repaired_total":2500000,"trimmed_total":0,"moved_total":0}`}
	addr = rec.start(t)
	out := mustCLI(t, "storage", "repair", "--addr", addr)
	for _, want := range []string{"12345678", "1000000", "2500000"} {
		if !strings.Contains(out, want) {
			t.Errorf("storage repair table lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "e+") {
		t.Errorf("storage repair printed a count as a float:\n%s", out)
	}
}

// TestQuotaZeroSaysUnlimited: a quota of 0 is no limit, and the
// confirmation says so rather than "0 bytes".
func TestQuotaZeroSaysUnlimited(t *testing.T) {
	rec := &recorder{reply: `{"status":"ok"}`}
	addr := rec.start(t)
	if out := mustCLI(t, "mailbox", "quota", "a@example.com", "0", "--addr", addr); !strings.Contains(out, "unlimited") || strings.Contains(out, "0 bytes") {
		t.Errorf("mailbox quota 0 said %q", out)
	}
}
