package main

import "testing"

// TestQuotaColumn: mailbox ls's QUOTA is read by a person, who should
// not count the digits of 2147483648 to see 2 GiB; --json keeps the
// exact quota_bytes for scripts.
func TestQuotaColumn(t *testing.T) {
	for q, want := range map[int64]string{
		0:          "unlimited",
		100:        "100B",
		1536:       "1.5KiB",
		10 << 20:   "10.0MiB",
		1 << 30:    "1.0GiB",
		2 << 30:    "2.0GiB",
		3 << 40:    "3.0TiB",
		1<<30 + 1:  "1.0GiB",
		1000 << 20: "1000.0MiB",
	} {
		if got := formatQuota(q); got != want {
			t.Errorf("formatQuota(%d) = %q, want %q", q, got, want)
		}
	}
}
