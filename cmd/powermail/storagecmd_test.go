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

// TestWritesAnswerWhatHoldsInJSON: settings set --json and forward add
// --json printed only {"status":"ok"}, dropping the settings that hold
// after the change (merged with another's at apply) and the forward's
// stored form, which the table shows.
func TestWritesAnswerWhatHoldsInJSON(t *testing.T) {
	rec := &recorder{reply: `{"status":"ok","replicas":3,"write_quorum":2,"command_encoding":12,"max_voters":5}`}
	addr := rec.start(t)
	var s map[string]any
	if out := mustCLI(t, "settings", "set", "--max-voters", "5", "--json", "--addr", addr); json.Unmarshal([]byte(out), &s) != nil ||
		s["status"] != "ok" || s["replicas"] != 3.0 || s["write_quorum"] != 2.0 || s["max_voters"] != 5.0 {
		t.Errorf("settings set --json said %q", out)
	}
	rec = &recorder{reply: `{"status":"ok","address":"sales@example.com","targets":["a@x.org"]}`}
	addr = rec.start(t)
	var f map[string]any
	if out := mustCLI(t, "forward", "add", "sales@Example.COM", "--to", "a@X.org", "--json", "--addr", addr); json.Unmarshal([]byte(out), &f) != nil ||
		f["status"] != "ok" || f["address"] != "sales@example.com" {
		t.Errorf("forward add --json said %q", out)
	}
}
