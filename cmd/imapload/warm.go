package main

import (
	"fmt"
	"os"
	"time"

	"github.com/emersion/go-imap/v2"
)

// warmPage is how many messages one warm-up FETCH asks for.
const warmPage = 1000

// warm fetches, through every IMAP target, the header fields the fetchhdr
// command asks for, of every message of every account's mailbox, once.
// A server then answers header FETCHes from whatever cache it keeps
// (Dovecot's index cache, PowerMail's node-wide header cache), which is
// what "a warm mailbox" means; body reads are left cold on both.
func warm(c *config) error {
	start := time.Now()
	n := 0
	for _, addr := range c.imapAddrs {
		for _, a := range c.accounts {
			k, err := warmOne(addr, a, c)
			if err != nil {
				return fmt.Errorf("warm %s on %s: %w", a.user, addr, err)
			}
			n += k
		}
	}
	fmt.Fprintf(os.Stderr, "warm: fetched the headers of %d messages through %d targets in %.1f s\n",
		n, len(c.imapAddrs), time.Since(start).Seconds())
	return nil
}

func warmOne(addr string, a account, c *config) (int, error) {
	cl, n, err := dialSelect(addr, a, c)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	opts := &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader,
			HeaderFields: []string{"FROM", "SUBJECT", "DATE"}, Peek: true}}}
	for first := uint32(1); first <= n; first += warmPage {
		var set imap.SeqSet
		set.AddRange(first, min(first+warmPage-1, n))
		if _, err := cl.Fetch(set, opts).Collect(); err != nil {
			return 0, err
		}
	}
	cl.Logout().Wait()
	return int(n), nil
}
