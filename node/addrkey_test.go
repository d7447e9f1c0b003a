package node

import "testing"

// Every spelling of one account shares one key, and a sender is the
// mailbox itself, with or without a +detail, ASCII case folded only.
func TestAccountKeyAndOwnAddress(t *testing.T) {
	for _, spelling := range []string{"alice@example.com", "Alice@Example.COM", ` alice@example.com`, `"alice"@example.com`} {
		if got := AccountKey(spelling); got != AccountKey("alice@example.com") {
			t.Errorf("AccountKey(%q) = %q, want the key of alice@example.com", spelling, got)
		}
	}
	// Canonically equivalent spellings (NFC, NFD) are one account too:
	// logins find an NFC mailbox by either from command encoding 13, so
	// a per-account limit keyed by bytes would count them apart.
	if AccountKey("Re\u0301ne@example.com") != AccountKey("r\u00e9ne@example.com") {
		t.Error("AccountKey tells the decomposed spelling from the precomposed one")
	}
	for addr, want := range map[string]bool{
		"alice@example.com":      true,
		"ALICE@example.com":      true,
		"alice+news@example.com": true,
		"alice@example.org":      false,
		"alicex@example.com":     false,
		"\u212Aate@example.com":  false, // the Kelvin sign, against kate
		"":                       false,
	} {
		mailbox := "alice@example.com"
		if addr == "\u212Aate@example.com" {
			mailbox = "kate@example.com"
		}
		if got := OwnAddress(addr, mailbox); got != want {
			t.Errorf("OwnAddress(%q, %q) = %v, want %v", addr, mailbox, got, want)
		}
	}
	// A mailbox whose own name has a "+" is itself, and its +detail.
	for addr, want := range map[string]bool{"sales+eu@example.com": true, "sales+eu+x@example.com": true, "sales@example.com": false} {
		if got := OwnAddress(addr, "sales+eu@example.com"); got != want {
			t.Errorf("OwnAddress(%q, sales+eu@) = %v, want %v", addr, got, want)
		}
	}
	if !SameAddress("Sales@example.com", "sales@example.com") || SameAddress("sales+eu@example.com", "sales@example.com") {
		t.Error("SameAddress takes a +detail for the address, or case for another")
	}
}
