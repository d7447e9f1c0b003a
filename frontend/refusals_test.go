package frontend

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/frontend/internal/testtls"
	"powermail/node"
)

// resolved reports whether Resolve was called for rcpt.
func (f *fakeDeliverer) resolved(rcpt string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.resolves, func(c resolveCall) bool { return c.rcpt == rcpt })
}

// RFC 5321 §7.8: after MaxRejectedRcpts refused recipients (20 by
// default) the next RCPT, valid or not, gets 421 4.7.0 without a
// directory lookup, and the connection is closed with nothing after the
// 421. RSET does not reset the count.
func TestRejectedRcptLimit(t *testing.T) {
	f := newFakeDeliverer()
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	c.begin("alice@example.com")
	for i := range DefaultMaxRejectedRcpts {
		if i == DefaultMaxRejectedRcpts/2 {
			c.expect("RSET", 250, "")
			c.begin("alice@example.com")
		}
		c.expect(fmt.Sprintf("RCPT TO:<guess%d@example.com>", i), 550, "5.1.1")
	}
	c.expect("RCPT TO:<bob@example.com>", 421, "4.7.0")
	if lines := c.expectClosed(); len(lines) > 0 {
		t.Fatalf("after the 421 the server said %q", lines)
	}
	if f.resolved("bob@example.com") {
		t.Error("the RCPT over the limit was looked up")
	}
	if ds := f.allDeliveries(); len(ds) != 0 {
		t.Errorf("deliveries: %+v", ds)
	}
}

// A pipelined DATA behind the closing 421 delivers nothing, although the
// transaction has an accepted recipient, and the server closes.
func TestRejectedRcptLimitPipelined(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRejectedRcpts = 2
	f := newFakeDeliverer()
	_, addr := startServer(t, cfg, f)
	c := dial(t, addr)
	c.ehlo()
	c.write("MAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\n" +
		"RCPT TO:<x@example.com>\r\nRCPT TO:<y@example.com>\r\nRCPT TO:<bob@example.com>\r\n" +
		"DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n")
	checkReply(t, "MAIL", c.read(), 250, "2.0.0")
	checkReply(t, "RCPT alice", c.read(), 250, "2.0.0")
	checkReply(t, "RCPT x", c.read(), 550, "5.1.1")
	checkReply(t, "RCPT y", c.read(), 550, "5.1.1")
	checkReply(t, "RCPT bob", c.read(), 421, "4.7.0")
	for _, line := range c.expectClosed() {
		if strings.HasPrefix(line, "250 ") {
			t.Errorf("after the 421: %q", line)
		}
	}
	if ds := f.allDeliveries(); len(ds) != 0 {
		t.Errorf("%d messages delivered after the 421", len(ds))
	}
}

// The count belongs to the connection: STARTTLS, which starts a new
// go-smtp session, does not reset it, and the 421 closes a TLS
// connection as cleanly as a plain one.
func TestRejectedRcptLimitSurvivesSTARTTLS(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRejectedRcpts = 4
	serverTLS, roots := testtls.Config(t)
	cfg.TLS = serverTLS
	_, addr := startServer(t, cfg, newFakeDeliverer())
	c := dial(t, addr)
	c.ehlo()
	c.begin()
	c.expect("RCPT TO:<x1@example.com>", 550, "5.1.1")
	c.expect("RCPT TO:<x2@example.com>", 550, "5.1.1")
	c.expect("STARTTLS", 220, "")
	c.upgradeTLS(roots)
	c.ehlo()
	c.begin()
	c.expect("RCPT TO:<x3@example.com>", 550, "5.1.1")
	c.expect("RCPT TO:<x4@example.com>", 550, "5.1.1")
	c.expect("RCPT TO:<alice@example.com>", 421, "4.7.0")
	if lines := c.expectClosed(); len(lines) > 0 {
		t.Fatalf("after the 421 the server said %q", lines)
	}
}

// The first refusals are answered at once; from the sixth on, each waits
// one RejectedRcptDelay step longer than the one before.
func TestRejectedRcptDelay(t *testing.T) {
	cfg := testConfig()
	cfg.RejectedRcptDelay = 200 * time.Millisecond
	_, addr := startServer(t, cfg, newFakeDeliverer())
	c := dial(t, addr)
	c.ehlo()
	c.begin()
	start := time.Now()
	for i := range freeRejectedRcpts {
		c.expect(fmt.Sprintf("RCPT TO:<free%d@example.com>", i), 550, "5.1.1")
	}
	if took := time.Since(start); took >= cfg.RejectedRcptDelay {
		t.Errorf("the first %d refusals took %v", freeRejectedRcpts, took)
	}
	for step := 1; step <= 2; step++ {
		start := time.Now()
		c.expect(fmt.Sprintf("RCPT TO:<slow%d@example.com>", step), 550, "5.1.1")
		if took, want := time.Since(start), time.Duration(step)*cfg.RejectedRcptDelay; took < want {
			t.Errorf("refusal %d answered after %v, want at least %v", freeRejectedRcpts+step, took, want)
		}
	}
	// A temporary refusal is neither counted nor delayed.
	start = time.Now()
	c.expect("RCPT TO:<down@example.com>", 451, "4.3.0")
	if took := time.Since(start); took >= cfg.RejectedRcptDelay {
		t.Errorf("a temporary refusal took %v", took)
	}
}

func TestRefusalDelaySchedule(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want time.Duration
	}{
		{1, 0}, {freeRejectedRcpts, 0}, {freeRejectedRcpts + 1, time.Second},
		{20, 15 * time.Second}, {1000, maxRefusalDelaySteps * time.Second},
	} {
		if got := refusalDelay(tc.n, time.Second); got != tc.want {
			t.Errorf("refusalDelay(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	if got := refusalDelay(100, 0); got != 0 {
		t.Errorf("without a step: %v", got)
	}
}

// LMTP sits behind an MTA that carries many senders' mail over one
// connection: by default it has no refusal limit and no delay.
func TestLMTPNoRefusalLimitByDefault(t *testing.T) {
	cfg := lmtpConfig()
	cfg.RejectedRcptDelay = 0 // LMTP's default: none
	_, addr := startServer(t, cfg, newFakeDeliverer())
	c := dial(t, addr)
	c.expect("LHLO client.test", 250, "")
	c.expect("MAIL FROM:<s@remote.test>", 250, "")
	start := time.Now()
	for i := range 2 * DefaultMaxRejectedRcpts {
		c.expect(fmt.Sprintf("RCPT TO:<guess%d@example.com>", i), 550, "5.1.1")
	}
	c.expect("RCPT TO:<alice@example.com>", 250, "2.0.0")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("LMTP refusals took %v", took)
	}
}

func TestRefusalLimitDefaults(t *testing.T) {
	cfg, err := SMTPConfig{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxRejectedRcpts != 20 || cfg.RejectedRcptDelay != time.Second || cfg.MaxSessionTime != time.Hour {
		t.Errorf("SMTP defaults: %d %v %v", cfg.MaxRejectedRcpts, cfg.RejectedRcptDelay, cfg.MaxSessionTime)
	}
	cfg, err = SMTPConfig{LMTP: true}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxRejectedRcpts != 0 || cfg.RejectedRcptDelay != 0 || cfg.MaxSessionTime != time.Hour {
		t.Errorf("LMTP defaults: %d %v %v", cfg.MaxRejectedRcpts, cfg.RejectedRcptDelay, cfg.MaxSessionTime)
	}
	for _, bad := range []SMTPConfig{
		{MaxRejectedRcpts: -1},
		{RejectedRcptDelay: -time.Second},
		{MaxSessionTime: -time.Second},
	} {
		if _, err := NewSMTPServer(bad, newFakeDeliverer()); err == nil {
			t.Errorf("NewSMTPServer(%+v) accepted", bad)
		}
	}
}

// A client that keeps its connection with commands go-smtp answers
// itself (NOOP, RSET, VRFY), each of which restarts the idle timeout, is
// closed with 421 4.4.2 once MaxSessionTime has passed.
func TestSessionTimeLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSessionTime = 400 * time.Millisecond
	_, addr := startServer(t, cfg, newFakeDeliverer())
	start := time.Now()
	c := dial(t, addr)
	c.ehlo()
	for i := 0; ; i++ {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the connection outlived MaxSessionTime")
		}
		cmd := []string{"NOOP", "RSET", "VRFY alice"}[i%3]
		r := c.cmd(cmd)
		if r.code == 421 {
			checkReply(t, cmd, r, 421, "4.4.2")
			break
		}
		if r.code/100 != 2 {
			t.Fatalf("%s: %v", cmd, r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if took := time.Since(start); took < cfg.MaxSessionTime {
		t.Errorf("closed after %v, before MaxSessionTime", took)
	}
	if lines := c.expectClosed(); len(lines) > 0 {
		t.Fatalf("after the 421 the server said %q", lines)
	}
}

// A transaction under way when MaxSessionTime passes is finished (up to
// DeliverTimeout later); the connection is closed right after it, not
// an idle timeout later.
func TestSessionTimeLimitFinishesTransaction(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSessionTime = 300 * time.Millisecond
	f := newFakeDeliverer()
	_, addr := startServer(t, cfg, f)
	c := dial(t, addr)
	c.ehlo()
	c.begin("alice@example.com")
	time.Sleep(2 * cfg.MaxSessionTime)
	c.expect("NOOP", 250, "")
	checkReply(t, "DATA", c.data("Subject: late\r\n\r\nstill delivered\r\n"), 250, "2.0.0")
	if len(f.allDeliveries()) != 1 {
		t.Fatal("the message was not delivered")
	}
	start := time.Now()
	checkReply(t, "after the transaction", c.read(), 421, "4.4.2")
	if took := time.Since(start); took > cfg.ReadTimeout/2 {
		t.Errorf("closed %v after the transaction: the idle timeout, not the session's end", took)
	}
	c.expectClosed()
}

// An SRS address routes mail back out to the original sender, so only
// a bounce (null reverse-path, RFC 5321 §4.5.5) may use it: on the MX
// and LMTP listeners, any other sender gets 550 5.7.1 before a
// directory lookup, in any case of the "SRS0=" prefix. The refusal
// counts as a rejected RCPT.
func TestSRSRecipientNeedsNullSender(t *testing.T) {
	const srs = "SRS0=HHHH=TT=gmail.com=victim@example.com"
	for _, lmtp := range []bool{false, true} {
		t.Run(fmt.Sprintf("lmtp=%v", lmtp), func(t *testing.T) {
			cfg := testConfig()
			cfg.LMTP = lmtp
			cfg.MaxRejectedRcpts = 3
			f := newFakeDeliverer()
			f.directory[strings.ToLower(srs)] = []string{"alice@example.com"} // as if the hash were good
			_, addr := startServer(t, cfg, f)
			c := dial(t, addr)
			if lmtp {
				c.expect("LHLO client.test", 250, "")
			} else {
				c.ehlo()
			}
			c.expect("MAIL FROM:<>", 250, "2.0.0")
			c.expect("RCPT TO:<"+srs+">", 250, "2.0.0")
			c.expect("RSET", 250, "")
			c.expect("MAIL FROM:<spammer@remote.test>", 250, "2.0.0")
			for _, rcpt := range []string{srs, strings.ToLower(srs), `"` + strings.TrimSuffix(srs, "@example.com") + `"@example.com`} {
				r := c.expect("RCPT TO:<"+rcpt+">", 550, "5.7.1")
				if !strings.Contains(r.msg, "bounces") {
					t.Errorf("%s: %v", rcpt, r)
				}
			}
			c.expect("RCPT TO:<alice@example.com>", 421, "4.7.0") // the refusals counted
			c.expectClosed()
			f.mu.Lock()
			defer f.mu.Unlock()
			if n := len(f.resolves); n != 1 {
				t.Errorf("%d Resolve calls, want only the bounce's", n)
			}
		})
	}
}

// passwords is a PasswordChecker over a fixed table.
type passwords map[string]string

func (p passwords) Authenticate(_ context.Context, user, password string) (node.Login, error) {
	if pw, ok := p[user]; ok && pw == password {
		return node.Login{Address: user}, nil
	}
	return node.Login{}, node.ErrAuthFailed
}

// Submission keeps its rule: an authenticated user may send to an SRS
// address, whatever the sender.
func TestSubmissionSendsToSRS(t *testing.T) {
	const srs = "SRS0=HHHH=TT=gmail.com=victim@example.com"
	cfg := testConfig()
	cfg.Submission = true
	cfg.Auth = NewAuthenticator(passwords{"alice@example.com": "pw"}, AuthConfig{AllowInsecure: true, FailureDelay: time.Millisecond}, cfg.Logger)
	f := newFakeDeliverer()
	f.directory[strings.ToLower(srs)] = []string{"bob@example.com"}
	_, addr := startServer(t, cfg, f)
	c := dial(t, addr)
	c.ehlo()
	c.expect("AUTH PLAIN "+b64("\x00alice@example.com\x00pw"), 235, "2.0.0")
	c.expect("MAIL FROM:<alice@example.com>", 250, "2.0.0")
	c.expect("RCPT TO:<"+srs+">", 250, "2.0.0")
}
