package fsm

import (
	"strings"
	"testing"
)

// A domain with a character outside LDH names that character, not the
// first byte of its UTF-8 encoding ("bücher" was said to hold 'Ã').
func TestDomainErrorNamesTheCharacter(t *testing.T) {
	for in, want := range map[string]string{
		"bücher.de":    `has character 'ü'`,
		"例え.jp":        `has character '例'`,
		"ex_ample.com": `has character '_'`,
	} {
		_, err := NormalizeDomain(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NormalizeDomain(%q): %v, want %q", in, err, want)
		}
	}
}
