package frontend_test

import (
	"fmt"
	"testing"
	"time"

	"powermail/frontend"
	"powermail/node/nodetest"
)

func TestZZExplore(t *testing.T) {
	c := nodetest.Start(t, 3)
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, startIMAP(t, n, frontend.IMAPConfig{PollInterval: time.Second}, true))
	}
	user := imapNewAddr(t)
	c.AddMailboxes(imapPassword, user)
	for i := 0; i < 5; i++ {
		c.Deliver(0, imapTestMsg(fmt.Sprint("m", i), "x"), user)
	}
	a := dialIMAPRaw(t, addrs[0], user)
	b := dialIMAPRaw(t, addrs[1], user)
	run := func(who string, r *imapRaw, cmd string) {
		u, tg := r.cmd(cmd)
		fmt.Printf("%s> %s\n", who, cmd)
		for _, l := range u {
			fmt.Printf("%s< %s\n", who, l)
		}
		fmt.Printf("%s< %s\n", who, tg)
	}
	run("A", a, "SELECT INBOX")
	run("B", b, "SELECT INBOX")
	run("B", b, "STORE 1 +FLAGS (\\Seen Work)")
	run("A", a, "NOOP")
	run("B", b, "MOVE 1 Trash")
	run("A", a, "NOOP")
	run("A", a, "STORE 1 +FLAGS (work)")
	run("B", b, "NOOP")
	run("B", b, "STORE 1 -FLAGS (WORK)")
	run("A", a, "NOOP")
	run("A", a, "CREATE x/y")
	run("A", a, "CREATE x")
	run("A", a, "CREATE x/y/z")
	run("B", b, "SELECT x/y")
	run("A", a, "SELECT x/y")
	run("A", a, "RENAME x q")
	run("A", a, "NOOP")
	run("A", a, "UID FETCH 1:* (FLAGS)")
	run("A", a, "LIST \"\" \"%/%\"")
	run("A", a, "LIST \"\" \"q*\" RETURN (STATUS (MESSAGES UIDVALIDITY))")
	run("A", a, "SELECT INBOX")
	run("A", a, "RENAME INBOX Old")
	run("A", a, "NOOP")
	run("A", a, "STATUS Old (MESSAGES UIDNEXT UIDVALIDITY)")
	run("A", a, "STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)")
	run("A", a, "APPEND INBOX (\\Seen) {5+}\r\nhello")
	run("A", a, "RENAME Old INBOX/Old")
	run("A", a, "DELETE INBOX/Old")
	run("A", a, "CREATE \"&AOk-t&AOk-\"")
	run("A", a, "LIST \"\" \"*t*\"")
	run("A", a, "CREATE \"bad&\"")
	run("A", a, "SUBSCRIBE \"&AOk-t&AOk-\"")
	run("A", a, "UNSUBSCRIBE \"&AOk-t&AOk-\"")
	run("A", a, "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" \"%\" RETURN (CHILDREN)")
	run("A", a, "LIST (SPECIAL-USE) \"\" \"*\"")
	run("A", a, "LIST \"\" \"*\" RETURN (SPECIAL-USE)")
}
