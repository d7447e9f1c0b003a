package frontend_test

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"powermail/frontend"
)

// TestAccessMetrics: logins through the shared Authenticator and the
// IMAP and POP3 connections are counted, over real clients.
func TestAccessMetrics(t *testing.T) {
	store, user := imapMemStore(t)
	auth := pop3TestAuth(store, true)
	imapSrv := frontend.NewIMAPServer(store, auth, frontend.IMAPConfig{MaxConnsPerIP: 1}, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go imapSrv.Serve(ln)
	t.Cleanup(func() { imapSrv.Close() })
	maildrops := newPOP3Fake() // POP3's store; logins go through auth, over store
	maildrops.add(user, "Subject: x\r\n\r\nbody\r\n")
	pop3Srv, pop3Addr := pop3Serve(t, maildrops, auth, pop3TestConfig(), false)

	reg := prometheus.NewRegistry()
	for _, r := range []func(prometheus.Registerer) error{auth.RegisterMetrics, imapSrv.RegisterMetrics, pop3Srv.RegisterMetrics} {
		if err := r(reg); err != nil {
			t.Fatal(err)
		}
	}

	c, err := imapclient.DialInsecure(ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(user, "wrong").Wait(); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if err := c.Login(user, imapPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("No such folder", nil).Wait(); err == nil {
		t.Fatal("selected a folder that does not exist")
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{Flags: true}).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ID(&imap.IDData{Name: "metrics test"}).Wait(); err != nil {
		t.Fatal(err)
	}
	over, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	over.SetDeadline(time.Now().Add(5 * time.Second))
	greeting := make([]byte, 200)
	n, _ := over.Read(greeting)
	over.Close()
	if !strings.HasPrefix(string(greeting[:n]), "* BYE [UNAVAILABLE]") {
		t.Fatalf("second IMAP connection from one IP with a limit of 1: %q", greeting[:n])
	}

	p := pop3Dial(t, pop3Addr)
	p.ok("USER " + user)
	p.ok("PASS " + imapPassword)
	p.ok("stat")
	p.fail("RETR 9", "")
	p.fail("XYZZY", "")
	p.ok("NOOP")

	expo := `
# HELP powermail_connections_open Connections open now.
# TYPE powermail_connections_open gauge
powermail_connections_open{proto="imap"} 1
powermail_connections_open{proto="pop3"} 1
# HELP powermail_connections_refused_total Connections refused at a connection limit, per IP or the server's.
# TYPE powermail_connections_refused_total counter
powermail_connections_refused_total{proto="imap"} 1
powermail_connections_refused_total{proto="pop3"} 0
# HELP powermail_connections_total Connections accepted.
# TYPE powermail_connections_total counter
powermail_connections_total{proto="imap"} 1
powermail_connections_total{proto="pop3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expo),
		"powermail_connections_open", "powermail_connections_refused_total", "powermail_connections_total"); err != nil {
		t.Error(err)
	}
	for result, want := range map[string]float64{"ok": 2, "failed": 1} {
		got, err := counterValue(reg, "powermail_logins_total", map[string]string{"result": result})
		if err != nil || got != want {
			t.Errorf("logins %s: %v (%v), want %v", result, got, err, want)
		}
	}
	// POP3 commands, by name (any case; unknown words as "other") and by
	// the status of their reply.
	for _, c := range []struct {
		command, result string
		want            float64
	}{{"user", "ok", 1}, {"pass", "ok", 1}, {"stat", "ok", 1}, {"retr", "err", 1}, {"retr", "ok", 0}, {"other", "err", 1}, {"noop", "ok", 1}} {
		got, err := counterValue(reg, "powermail_pop3_commands_total", map[string]string{"command": c.command, "result": c.result, "proto": "pop3"})
		if err != nil || got != c.want {
			t.Errorf("pop3 %s %s: %v (%v), want %v", c.command, c.result, got, err, c.want)
		}
	}
	// IMAP commands, by name (UID commands with their subcommand) and by
	// their tagged response, as seen on the wire.
	for _, c := range []struct {
		command, result string
		want            float64
	}{{"login", "no", 1}, {"login", "ok", 1}, {"select", "no", 1}, {"select", "ok", 1}, {"uid fetch", "ok", 1}, {"id", "ok", 1}} {
		got, err := counterValue(reg, "powermail_imap_commands_total", map[string]string{"command": c.command, "result": c.result, "proto": "imap"})
		if err != nil || got != c.want {
			t.Errorf("imap %s %s: %v (%v), want %v", c.command, c.result, got, err, c.want)
		}
	}
}

// counterValue reads the counter name with exactly the labels given
// among its labels (0 if there is none).
func counterValue(reg *prometheus.Registry, name string, labels map[string]string) (float64, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			return m.GetCounter().GetValue(), nil
		}
	}
	return 0, nil
}

// A command answered below the library (QUOTA, ID) is counted by the
// answer the client gets, not by the NOOP that stood in for it.
func TestIMAPLocalCommandMetrics(t *testing.T) {
	store, user := imapMemStore(t)
	srv := newIMAPTestServer(store, frontend.IMAPConfig{}, true)
	reg := prometheus.NewRegistry()
	if err := srv.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	addr := listenIMAP(t, srv, false)
	t.Cleanup(func() { srv.Close() })

	anon := dialIMAPRaw(t, addr, "")
	if _, tagged := anon.cmd("GETQUOTAROOT INBOX"); !strings.HasPrefix(tagged, "BAD") {
		t.Fatalf("GETQUOTAROOT before login: %q", tagged)
	}
	raw := dialIMAPRaw(t, addr, user)
	if _, tagged := raw.cmd(`SETQUOTA "" (STORAGE 1)`); !strings.HasPrefix(tagged, "NO") {
		t.Fatalf("SETQUOTA: %q", tagged)
	}
	if _, tagged := raw.cmd(`GETQUOTA "elsewhere"`); !strings.HasPrefix(tagged, "NO") {
		t.Fatalf("GETQUOTA of an unknown root: %q", tagged)
	}
	if _, tagged := raw.cmd(`ID ("name")`); !strings.HasPrefix(tagged, "BAD") {
		t.Fatalf("ID with an odd list: %q", tagged)
	}
	raw.ok("GETQUOTAROOT INBOX")
	for _, c := range []struct {
		command, result string
		want            float64
	}{
		{"getquotaroot", "bad", 1}, {"getquotaroot", "ok", 1},
		{"setquota", "no", 1}, {"setquota", "ok", 0},
		{"getquota", "no", 1}, {"getquota", "ok", 0},
		{"id", "bad", 1}, {"id", "ok", 0},
	} {
		got, err := counterValue(reg, "powermail_imap_commands_total", map[string]string{"command": c.command, "result": c.result, "proto": "imap"})
		if err != nil || got != c.want {
			t.Errorf("imap %s %s: %v (%v), want %v", c.command, c.result, got, err, c.want)
		}
	}
}
