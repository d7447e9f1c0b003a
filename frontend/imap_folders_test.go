package frontend_test

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// testIMAPListPatternCost: a LIST pattern with many wildcards is matched
// in time linear in the name for each pattern position, not by trying
// every way the wildcards could split the name (go-imap's MatchList took
// 41 s for "*a" five times then "b" against 200 a's, and grew a
// hundredfold with each further "*a").
func testIMAPListPatternCost(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	c := dialIMAP(t, b, 0, user)
	long := strings.Repeat("a", 200)
	if err := c.Create(long, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	done := make(chan []string, 1)
	go func() {
		var names []string
		l, err := c.List("", strings.Repeat("*a", 8)+"b", nil).Collect()
		if err != nil {
			t.Errorf("LIST: %v", err)
		}
		for _, d := range l {
			names = append(names, d.Mailbox)
		}
		done <- names
	}()
	select {
	case names := <-done:
		if len(names) != 0 {
			t.Errorf("LIST with a pattern that matches nothing: %v", names)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("LIST with eight wildcards against a 200-octet name took over 5 s")
	}
	// The same matcher still matches what it should.
	for pattern, want := range map[string]bool{
		strings.Repeat("*a", 8): true, "a%a": true, "%": true, "a*": true, "*b": false, "a%b": false,
	} {
		if got := slices.Contains(listNames(t, c.Client, "", pattern), long); got != want {
			t.Errorf("LIST \"\" %q lists %s: %v, want %v", pattern, long[:8]+"...", got, want)
		}
	}
}
