package main

import (
	"bufio"
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseMix(t *testing.T) {
	m, err := parseMix("fetchhdr=3, search , append=0,STORE=2", imapOps)
	if err != nil {
		t.Fatal(err)
	}
	want := []mixEntry{{"fetchhdr", 3, 3}, {"search", 1, 4}, {"store", 2, 6}}
	if len(m) != len(want) {
		t.Fatalf("got %v, want %v", m, want)
	}
	for i := range want {
		if m[i] != want[i] {
			t.Fatalf("got %v, want %v", m, want)
		}
	}
	for _, bad := range []string{"", "append=0", "fetch=1", "retr=1", "search=x", "search=-1", "search,search=2"} {
		if _, err := parseMix(bad, imapOps); err == nil {
			t.Errorf("parseMix(%q): no error", bad)
		}
	}
	if _, err := parseMix("retr=3,top=1", pop3Ops); err != nil {
		t.Error(err)
	}
	for mode, preset := range presets {
		allowed := imapOps
		if mode == "pop3" {
			allowed = pop3Ops
		}
		if _, err := parseMix(preset, allowed); err != nil {
			t.Errorf("preset %s: %v", mode, err)
		}
	}
}

func TestPickFollowsWeights(t *testing.T) {
	m, _ := parseMix("select=1,fetchbody=3", imapOps)
	r := rand.New(rand.NewPCG(1, 2))
	n := map[string]int{}
	for i := 0; i < 40000; i++ {
		n[pick(m, r)]++
	}
	if f := float64(n["fetchbody"]) / 40000; f < 0.73 || f > 0.77 {
		t.Errorf("fetchbody share %.3f, want about 0.75 (%v)", f, n)
	}
}

func TestListFlagAndAccounts(t *testing.T) {
	var l listFlag
	l.Set("a:1, b:2")
	l.Set("c:3")
	if l.String() != "a:1,b:2,c:3" {
		t.Errorf("listFlag = %q", l.String())
	}
	acc, err := loadAccounts("", "pw", "u%d@x.test", 3)
	if err != nil || len(acc) != 3 || acc[2] != (account{"u3@x.test", "pw"}) {
		t.Errorf("pattern: %v %v", acc, err)
	}
	if _, err := loadAccounts("", "pw", "u%d@x.test", 0); err == nil {
		t.Error("pattern without --users-count accepted")
	}
	if _, err := loadAccounts("", "", "", 0); err == nil {
		t.Error("no user accepted")
	}
	f := filepath.Join(t.TempDir(), "users")
	os.WriteFile(f, []byte("# comment\na@x secret one\n\nb@x:p:w\nc@x\n"), 0o600)
	acc, err = loadAccounts("z@x", "def", f, 0)
	want := []account{{"z@x", "def"}, {"a@x", "secret one"}, {"b@x", "p:w"}, {"c@x", "def"}}
	if err != nil || len(acc) != len(want) {
		t.Fatalf("file: %v %v", acc, err)
	}
	for i := range want {
		if acc[i] != want[i] {
			t.Errorf("file account %d = %v, want %v", i, acc[i], want[i])
		}
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"--imap", "h:1,h:2", "--imap", "h:3", "--user", "u", "--mode", "search", "--sessions", "4"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.imapAddrs) != 3 || c.mix[0].op != "search" || c.sessions != 4 {
		t.Errorf("config %+v", c)
	}
	for _, args := range [][]string{
		{"--user", "u"}, // no --imap
		{"--imap", "h:1", "--user", "u", "--mode", "pop3"}, // no --pop3
		{"--imap", "h:1", "--user", "u", "--mode", "nope"},
		{"--imap", "h:1", "--user", "u", "--mix", "retr=1"},
		{"--imap", "h:1", "--user", "u", "--sessions", "0"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
	if _, err := parseFlags([]string{"--pop3", "h:1", "--user", "u", "--mode", "pop3"}); err != nil {
		t.Error(err)
	}
}

func TestPercentileAndReport(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	r := makeRow("X", lat, 2, 10)
	if r.Count != 100 || r.Rate != 10 || r.P50 != 50 || r.P99 != 99 || r.Max != 100 || r.Errors != 2 {
		t.Errorf("row %+v", r)
	}
	if percentile(nil, 0.5) != 0 || percentile([]time.Duration{7}, 0.99) != 7 {
		t.Error("percentile of short input")
	}

	a, b, setup := newRecorder(), newRecorder(), newRecorder()
	a.ok("SEARCH_FROM", time.Millisecond)
	a.ok("FETCH_HDR", 2*time.Millisecond)
	b.ok("FETCH_HDR", 4*time.Millisecond)
	b.fail("FETCH_HDR", errors.New("boom"))
	b.fail("FETCH_HDR", errors.New("boom"))
	b.ok("ZZZ", time.Millisecond)
	setup.ok("LOGIN", 3*time.Millisecond)
	a.merge(b)
	rep := &report{Label: "test", Mode: "mixed", Sessions: 2, Targets: []string{"h:1"}}
	rep.fill(a, setup, 2*time.Second)
	if rep.Total.Count != 4 || rep.Total.Errors != 2 || rep.Total.Rate != 2 {
		t.Errorf("total %+v", rep.Total)
	}
	var names []string
	for _, r := range rep.Commands {
		names = append(names, r.Command)
	}
	if strings.Join(names, " ") != "FETCH_HDR SEARCH_FROM ZZZ" {
		t.Errorf("row order %v", names)
	}
	if s := rep.Errors["FETCH_HDR"]; len(s) != 1 || s[0] != "boom" {
		t.Errorf("error samples %v", rep.Errors)
	}
	var out bytes.Buffer
	rep.writeTable(&out)
	text := out.String()
	for _, want := range []string{"# imapload test mode=mixed sessions=2 targets=h:1\n",
		"\nFETCH_HDR               2       2        1.0     2.000     4.000     4.000\n",
		"\nTOTAL                   4       2        2.0", "# setup LOGIN: 1 ok", "# error FETCH_HDR: boom\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
}

func TestBuildMessage(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, size := range []int{512, 4096, 20000, 40000, 200000} {
		m := buildMessage(msgSpec{id: "x.1", to: "u@x.test", sender: 7, topic: 2, date: time.Unix(1e9, 0), size: size}, r)
		if d := len(m) - size; d < -100 || d > 100 {
			t.Errorf("size %d: got %d bytes", size, len(m))
		}
		s := string(m)
		if !strings.Contains(s, "report: ") || !strings.Contains(s, "From: \"Hugo Berg\" <hugo.berg@example.net>") {
			t.Errorf("size %d: headers:\n%.600s", size, s)
		}
		if strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\n") {
			t.Errorf("size %d: bare LF", size)
		}
		if (size >= 32<<10) != strings.Contains(s, "multipart/mixed") {
			t.Errorf("size %d: attachment presence wrong", size)
		}
	}
	if got := senderTerm(7); got != "hugo.berg" {
		t.Errorf("senderTerm(7) = %q", got)
	}
	seen := map[string]bool{}
	for j := 0; j < numSenders; j++ {
		seen[senderTerm(j)] = true
	}
	if len(seen) != numSenders {
		t.Errorf("%d distinct senders, want %d", len(seen), numSenders)
	}
}

// TestPOP3Client runs the POP3 client against a scripted server.
func TestPOP3Client(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		rd := bufio.NewReader(c)
		c.Write([]byte("+OK ready\r\n"))
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			switch cmd := strings.TrimSpace(line); cmd {
			case "USER u@x":
				c.Write([]byte("+OK\r\n"))
			case "PASS pw":
				c.Write([]byte("+OK logged in\r\n"))
			case "STAT":
				c.Write([]byte("+OK 2 300\r\n"))
			case "RETR 1":
				c.Write([]byte("+OK 10 octets\r\nab\r\n..dot\r\n.\r\n"))
			case "QUIT":
				c.Write([]byte("+OK bye\r\n"))
				return
			default:
				c.Write([]byte("-ERR no such message\r\n"))
			}
		}
	}()
	p, err := dialPOP3(ln.Addr().String(), account{"u@x", "pw"}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.stat(); err != nil || p.n != 2 {
		t.Fatalf("stat: n=%d err=%v", p.n, err)
	}
	if n, err := p.multi("RETR %d", 1); err != nil || n != len("ab\n.dot\n") {
		t.Errorf("RETR 1: %d bytes, %v", n, err)
	}
	var pe pop3Error
	if _, err := p.multi("RETR %d", 9); !errors.As(err, &pe) {
		t.Errorf("RETR 9: %v, want a pop3Error", err)
	}
	if _, err := p.cmd("QUIT"); err != nil {
		t.Error(err)
	}
}
