package main

import (
	"testing"

	"powermail/node"
)

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

// The USED column is in the same units as QUOTA beside it.
func TestMailboxRowUsedInQuotaUnits(t *testing.T) {
	var m node.MailboxView
	m.Address, m.QuotaBytes, m.UsedBytes, m.Messages, m.HasPassword = "a@example.com", 1<<30, 3<<29, 7, true
	row := mailboxRow(m)
	if row[1] != "1.0GiB" || row[2] != "1.5GiB" || row[3] != "7" || row[4] != "yes" {
		t.Errorf("mailbox ls row %q", row)
	}
}
