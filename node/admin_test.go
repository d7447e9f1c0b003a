package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

func adminDo(t *testing.T, n *Node, method, path, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+n.AdminAddr()+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

func TestAdminAPI(t *testing.T) {
	c := newTestCluster(t, 2)
	c.leader(5 * time.Second)
	f := c.follower()
	tok := string(testSecret)

	if code, _ := adminDo(t, f, "GET", "/healthz", "", ""); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	waitFor(t, 5*time.Second, "readyz", func() bool { code, _ := adminDo(t, f, "GET", "/readyz", "", ""); return code == 200 })
	for _, path := range []string{"/v1/domains", "/metrics", "/v1/cluster/status"} {
		if code, _ := adminDo(t, f, "GET", path, "", ""); code != 401 {
			t.Fatalf("%s without token: %d", path, code)
		}
		if code, _ := adminDo(t, f, "GET", path, "not-the-secret", ""); code != 401 {
			t.Fatalf("%s with a wrong token: %d", path, code)
		}
	}
	steps := []struct {
		method, path, body string
		code               int
		errCode            string
	}{
		{"POST", "/v1/domains", `{"name":"example.com"}`, 200, ""},
		{"POST", "/v1/domains", `{"name":"example.com"}`, 409, "exists"},
		{"POST", "/v1/domains", `{"name":"bad_domain"}`, 400, "invalid"},
		{"POST", "/v1/domains", `{"nmae":"typo.com"}`, 400, "invalid"},
		{"POST", "/v1/mailboxes", `{"address":"a@example.com","password":"pw-123456"}`, 200, ""},
		{"POST", "/v1/mailboxes", `{"address":"b@nowhere.org"}`, 404, "not_found"},
		{"POST", "/v1/mailboxes/batch", `{"mailboxes":[{"address":"c@example.com"},{"address":"d@example.com"}]}`, 200, ""},
		{"POST", "/v1/mailboxes/a@example.com/quota", `{"quota_bytes":1000}`, 200, ""},
		{"POST", "/v1/mailboxes/a@example.com/enabled", `{"enabled":false}`, 200, ""},
		{"POST", "/v1/forwards", `{"address":"x@example.com","targets":["a@example.com"]}`, 200, ""},
		{"POST", "/v1/forwards", `{"address":"a@example.com","targets":["x@example.com"]}`, 400, "forward_loop"},
		{"DELETE", "/v1/domains/example.com", "", 409, "not_empty"},
		{"DELETE", "/v1/mailboxes/zz@example.com", "", 404, "not_found"},
	}
	for _, s := range steps {
		code, body := adminDo(t, f, s.method, s.path, tok, s.body)
		var e apiError
		json.Unmarshal([]byte(body), &e)
		if code != s.code || e.Code != s.errCode {
			t.Fatalf("%s %s %s: %d %s, want %d %q", s.method, s.path, s.body, code, body, s.code, s.errCode)
		}
	}
	code, body := adminDo(t, c.nodes["n1"], "GET", "/v1/mailboxes/a@example.com", tok, "")
	var mb MailboxView
	json.Unmarshal([]byte(body), &mb)
	if code != 200 || mb.QuotaBytes != 1000 || !mb.Disabled || !mb.HasPassword || strings.Contains(body, "argon2") {
		t.Fatalf("mailbox view: %d %s", code, body)
	}
	code, body = adminDo(t, f, "GET", "/metrics", tok, "")
	for _, m := range []string{"powermail_raft_state", "powermail_raft_commit_seconds", "powermail_admin_requests_total", "powermail_read_index_seconds"} {
		if code != 200 || !strings.Contains(body, m) {
			t.Fatalf("metrics missing %s (code %d)", m, code)
		}
	}
}

// A password hash whose check would panic or run for days is refused
// before it is proposed, although the state machine's rule admits it.
func TestAdminRefusesCostlyPasswordHash(t *testing.T) {
	n := newTestCluster(t, 1).leader(5 * time.Second)
	tok := string(testSecret)
	if code, body := adminDo(t, n, "POST", "/v1/domains", tok, `{"name":"example.com"}`); code != 200 {
		t.Fatalf("domain: %d %s", code, body)
	}
	for _, h := range []string{
		"$argon2id$v=19$m=19456,t=0,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5",
		"$2b$31$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
	} {
		code, body := adminDo(t, n, "POST", "/v1/mailboxes", tok, `{"address":"a@example.com","password_hash":"`+h+`"}`)
		if code != 400 || !strings.Contains(body, "argon2") && !strings.Contains(body, "bcrypt") {
			t.Errorf("hash %s: %d %s", h, code, body)
		}
	}
	if _, err := n.State().Mailbox("a@example.com"); err == nil {
		t.Error("the mailbox was created")
	}
}

// Requests that would change something nobody asked to change are
// refused: no body, a missing field, data after the JSON value. A write
// quorum no set of members can reach is set, with a warning.
func TestAdminRefusesIncompleteRequests(t *testing.T) {
	c := newTestCluster(t, 2)
	n := c.leader(5 * time.Second)
	tok := string(testSecret)
	mustApply(t, n, &fsm.DomainAdd{Name: "example.com"})
	mustApply(t, n, addMailbox("a@example.com"))
	quota := int64(1000)
	mustApply(t, n, &fsm.MailboxUpdate{Address: "a@example.com", QuotaBytes: &quota})
	cur, err := n.State().Settings()
	if err != nil {
		t.Fatal(err)
	}
	settings := func(r, w int) string {
		s := cur
		s.Replicas, s.WriteQuorum = r, w
		raw, _ := json.Marshal(s)
		return string(raw)
	}
	for _, r := range []struct{ path, body string }{
		{"/v1/mailboxes/a@example.com/enabled", ""},
		{"/v1/mailboxes/a@example.com/enabled", "{}"},
		{"/v1/mailboxes/a@example.com/quota", ""},
		{"/v1/mailboxes/a@example.com/quota", "{}"},
		{"/v1/mailboxes/a@example.com/quota", `{"quota_bytes":0} {"quota_bytes":5}`},
	} {
		if code, body := adminDo(t, n, "POST", r.path, tok, r.body); code != 400 {
			t.Errorf("POST %s %q: %d %s", r.path, r.body, code, body)
		}
	}
	mb, err := n.State().Mailbox("a@example.com")
	if err != nil || mb.Disabled || mb.QuotaBytes != 1000 {
		t.Errorf("mailbox changed: %+v, %v", mb, err)
	}
	// A write quorum above the members is set, with a warning.
	if code, out := adminDo(t, n, "POST", "/v1/settings", tok, settings(3, 3)); code != 200 || !strings.Contains(out, "warning") {
		t.Errorf("settings W=3 on 2 nodes: %d %s", code, out)
	}
	if code, out := adminDo(t, n, "POST", "/v1/settings", tok, settings(2, 2)); code != 200 || strings.Contains(out, "warning") {
		t.Errorf("settings W=2 on 2 nodes: %d %s", code, out)
	}
}

// A repair asked of a node that cannot reach a leader fails, instead of
// answering that the leader was asked.
func TestAdminRepairWithoutLeaderFails(t *testing.T) {
	c := newTestCluster(t, 2)
	l := c.leader(5 * time.Second)
	f := c.follower()
	l.Close()
	delete(c.nodes, l.ID())
	waitFor(t, 10*time.Second, "the leader gone", func() bool { _, err := f.leaderAddr(); return err != nil })
	if code, body := adminDo(t, f, "POST", "/v1/storage/repair", string(testSecret), ""); code == 200 {
		t.Fatalf("repair without a leader: %d %s", code, body)
	}
}

// A target given twice, also spelt differently (the domain's case, a
// trailing dot, the local part's case), is stored once, and the reply
// says what was stored: one copy of a message per target.
func TestAdminForwardStoresEachTargetOnce(t *testing.T) {
	_, n := oneNodeWithMailboxes(t, 1)
	tok := string(testSecret)
	code, body := adminDo(t, n, "POST", "/v1/forwards", tok,
		`{"address":"f@Example.com","targets":["a@x.org","u0@example.com","a@X.ORG","a@x.org.","U0@EXAMPLE.COM","A@x.org"]}`)
	var added ForwardAdded
	if err := json.Unmarshal([]byte(body), &added); code != 200 || err != nil {
		t.Fatalf("forward add: %d %s", code, body)
	}
	want := []string{"a@x.org", "u0@example.com"}
	if added.Address != "f@example.com" || !slices.Equal(added.Targets, want) {
		t.Fatalf("reply %s, want f@example.com -> %v", body, want)
	}
	fws, err := n.State().Forwards("example.com", "", 10)
	if err != nil || len(fws) != 1 || !slices.Equal(fws[0].Targets, want) {
		t.Fatalf("stored forwards %+v (%v), want one to %v", fws, err, want)
	}
	res, err := n.State().Resolve("f@example.com")
	if err != nil || len(res.Mailboxes) != 1 || len(res.External) != 1 {
		t.Fatalf("f@example.com resolves to %+v (%v), want one mailbox and one external address", res, err)
	}
	// Repeats do not count towards the limit of targets.
	many := `"b@x.org"` + strings.Repeat(`,"B@X.org"`, fsm.MaxForwardTargets)
	if code, body := adminDo(t, n, "POST", "/v1/forwards", tok, `{"address":"g@example.com","targets":[`+many+`]}`); code != 200 || !strings.Contains(body, `"targets":["b@x.org"]`) {
		t.Fatalf("one target given %d times: %d %s", fsm.MaxForwardTargets+1, code, body)
	}
}

// A forward's listing carries keep_copy whether it is true or false.
func TestAdminForwardListingAlwaysSaysKeepCopy(t *testing.T) {
	_, n := oneNodeWithMailboxes(t, 1)
	mustApply(t, n, &fsm.ForwardAdd{Address: "f@example.com", Targets: []string{"a@x.org"}})
	mustApply(t, n, &fsm.ForwardAdd{Address: "u0@example.com", Targets: []string{"b@x.org"}, KeepCopy: true})
	code, body := adminDo(t, n, "GET", "/v1/forwards?domain=example.com", string(testSecret), "")
	var fws []map[string]any
	if err := json.Unmarshal([]byte(body), &fws); code != 200 || err != nil || len(fws) != 2 {
		t.Fatalf("forwards: %d %s", code, body)
	}
	for _, f := range fws {
		if keep, ok := f["keep_copy"].(bool); !ok || keep != (f["address"] == "u0@example.com") {
			t.Errorf("forward %v: keep_copy %v", f["address"], f["keep_copy"])
		}
	}
}

// The tokenless probes close their connection after answering: a
// stranger cannot hold an admin slot for the idle timeout with them.
func TestAdminProbesCloseTheirConnection(t *testing.T) {
	c := newTestCluster(t, 1)
	n := c.leader(5 * time.Second)
	waitFor(t, 5*time.Second, "readyz", func() bool { code, _ := adminDo(t, n, "GET", "/readyz", "", ""); return code == 200 })
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + n.AdminAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !resp.Close {
			t.Errorf("%s: %d, close %v; want the connection closed after the answer", path, resp.StatusCode, resp.Close)
		}
	}
}

// A forward back to a target that reaches its address only through the
// catch-all is refused as a loop once the cluster is at encoding 7; a
// cluster below it keeps the first rule, so that its older nodes apply
// the same, instead of refusing the command for its encoding.
func TestAdminForwardLoopThroughCatchAll(t *testing.T) {
	for _, enc := range []int{fsm.NewestEncoding, fsm.EncodingJSON6} {
		c := newTestClusterWith(t, 1, func(cfg *Config) {
			cfg.BootstrapSettings = &BootstrapSettings{Replicas: 1, WriteQuorum: 1, CommandEncoding: enc}
		})
		n := c.leader(10 * time.Second)
		mustApply(t, n, &fsm.DomainAdd{Name: "example.com"})
		mustApply(t, n, addMailbox("c@example.com"))
		mustApply(t, n, &fsm.ForwardAdd{Address: "@example.com", Targets: []string{"c@example.com"}})
		mustApply(t, n, &fsm.ForwardAdd{Address: "a@example.com", Targets: []string{"ghost@example.com"}})
		code, body := adminDo(t, n, "POST", "/v1/forwards", string(testSecret),
			`{"address":"ghost@example.com","targets":["a@example.com"]}`)
		var e apiError
		json.Unmarshal([]byte(body), &e)
		if enc >= fsm.EncodingJSON7 && (code != 400 || e.Code != "forward_loop") {
			t.Fatalf("encoding %d: the loop through the catch-all: %d %s, want 400 forward_loop", enc, code, body)
		}
		if enc < fsm.EncodingJSON7 && code != 200 {
			t.Fatalf("encoding %d: %d %s, want the first rule's 200", enc, code, body)
		}
	}
}

// A listing's limit or after that does not parse is refused: read as the
// default (1000 entries, or UID 0), it answered a page that passed for
// what was asked.
func TestAdminListingRefusesBadPaging(t *testing.T) {
	n := newTestCluster(t, 1).leader(5 * time.Second)
	tok := string(testSecret)
	mustApply(t, n, &fsm.DomainAdd{Name: "example.com"})
	mustApply(t, n, addMailbox("a@example.com"))
	for _, path := range []string{
		"/v1/domains?limit=0",
		"/v1/domains?limit=-5",
		"/v1/domains?limit=ten",
		"/v1/mailboxes?domain=example.com&limit=1e3",
		"/v1/forwards?domain=example.com&limit=0",
		"/v1/queue?limit=x",
		"/v1/mailboxes/a@example.com/messages?after=abc",
		"/v1/mailboxes/a@example.com/messages?after=-1",
		"/v1/mailboxes/a@example.com/messages?after=4294967296",
	} {
		code, body := adminDo(t, n, "GET", path, tok, "")
		var e apiError
		json.Unmarshal([]byte(body), &e)
		if code != 400 || e.Code != "invalid" {
			t.Errorf("GET %s: %d %s, want 400 invalid", path, code, body)
		}
	}
	for _, path := range []string{"/v1/domains", "/v1/domains?limit=20000", "/v1/mailboxes/a@example.com/messages?after=4294967295&limit=5"} {
		if code, body := adminDo(t, n, "GET", path, tok, ""); code != 200 {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
}

// A removal without an id is bad input (400), not a member that is not
// found (404).
func TestAdminRemoveWithoutIDIsInvalid(t *testing.T) {
	n := newTestCluster(t, 1).leader(5 * time.Second)
	for _, body := range []string{`{}`, `{"force":true}`, `null`} {
		code, out := adminDo(t, n, "POST", "/v1/cluster/remove", string(testSecret), body)
		var e apiError
		json.Unmarshal([]byte(out), &e)
		if code != 400 || e.Code != "invalid" {
			t.Errorf("remove %s: %d %s, want 400 invalid", body, code, out)
		}
	}
}

// A node (or its state) closing under a request is a temporary failure:
// 503, which clients retry elsewhere, not 500.
func TestAdminErrorStatusClosedIsTemporary(t *testing.T) {
	for _, err := range []error{ErrClosed, fmt.Errorf("apply: %w", ErrClosed), &fsm.Error{Kind: fsm.ErrClosed, Msg: "state closed"}} {
		if got := errorStatus(err); got != http.StatusServiceUnavailable {
			t.Errorf("errorStatus(%v) = %d, want 503", err, got)
		}
	}
}

// A batch of more mailboxes than one entry holds is refused at once,
// before the node hashes the passwords in it.
func TestAdminOversizedBatchRefusedBeforeHashing(t *testing.T) {
	n := newTestCluster(t, 1).leader(5 * time.Second)
	mustApply(t, n, &fsm.DomainAdd{Name: "example.com"})
	var b strings.Builder
	b.WriteString(`{"mailboxes":[`)
	for i := range fsm.MaxMailboxBatch + 1 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"address":"u%d@example.com","password":"pw-%d"}`, i, i)
	}
	b.WriteString("]}")
	start := time.Now()
	code, out := adminDo(t, n, "POST", "/v1/mailboxes/batch", string(testSecret), b.String())
	if code != 400 || !strings.Contains(out, "1 to") {
		t.Fatalf("batch of %d: %d %s", fsm.MaxMailboxBatch+1, code, out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the refusal took %v: the passwords were hashed first", d)
	}
}

// A temporary failure of a streaming route (the export's read barrier
// without a leader) says "unavailable" with its 503, not "internal".
func TestAdminUnavailableIsNotInternal(t *testing.T) {
	c := newTestCluster(t, 2)
	l := c.leader(5 * time.Second)
	f := c.follower()
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	mustApply(t, l, addMailbox("a@example.com"))
	l.Close()
	delete(c.nodes, l.ID())
	waitFor(t, 10*time.Second, "the leader gone", func() bool { _, err := f.leaderAddr(); return err != nil })
	code, body := adminDo(t, f, "GET", "/v1/mailboxes/a@example.com/export", string(testSecret), "")
	var e apiError
	json.Unmarshal([]byte(body), &e)
	if code != 503 || e.Code != "unavailable" {
		t.Fatalf("export without a leader: %d %s, want 503 unavailable", code, body)
	}
}

// Every answer to a request without the token closes its connection, not
// just the probes' and the 401s: a stranger's request for a path that
// does not exist (404), or with a method a route does not take (405),
// must not keep an admin slot for the idle timeout either.
func TestAdminStrangersGetNoKeepAlive(t *testing.T) {
	n := newTestCluster(t, 1).leader(5 * time.Second)
	for _, req := range []struct{ method, path string }{
		{"GET", "/no-such-path"}, {"POST", "/healthz"}, {"GET", "/v1/domains"}, {"GET", "/healthz"},
	} {
		r, _ := http.NewRequest(req.method, "http://"+n.AdminAddr()+req.path, nil)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if !resp.Close {
			t.Errorf("%s %s: %d with the connection kept open; want it closed", req.method, req.path, resp.StatusCode)
		}
	}
	// The operator's connections stay open between requests.
	r, _ := http.NewRequest("GET", "http://"+n.AdminAddr()+"/no-such-path", nil)
	r.Header.Set("Authorization", "Bearer "+string(testSecret))
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Errorf("operator's 404 closed the connection")
	}
}

// GET /v1/forwards?target= takes after (a forward's address) and goes
// on from there: a listing of more forwards than a page holds could
// not be read past the first page. GET /v1/forwards/{address} shows one.
func TestAdminForwardsToPages(t *testing.T) {
	_, n := oneNodeWithMailboxes(t, 1)
	tok := string(testSecret)
	var want []string
	for i := range 5 {
		src := fmt.Sprintf("f%d@example.com", i)
		mustApply(t, n, &fsm.ForwardAdd{Address: src, Targets: []string{"u0@example.com"}})
		want = append(want, src)
	}
	var got []string
	after := ""
	for range 5 {
		code, body := adminDo(t, n, "GET", "/v1/forwards?target=u0@example.com&limit=2&after="+after, tok, "")
		var page []ForwardView
		if err := json.Unmarshal([]byte(body), &page); code != 200 || err != nil {
			t.Fatalf("after %q: %d %s", after, code, body)
		}
		for _, f := range page {
			got = append(got, f.Address)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].Address
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages of 2: %q; want %q", got, want)
	}
	if code, body := adminDo(t, n, "GET", "/v1/forwards?target=u0@example.com&after=nodomain", tok, ""); code != 400 {
		t.Errorf("an after that is no address: %d %s", code, body)
	}
	code, body := adminDo(t, n, "GET", "/v1/forwards/F3@example.com", tok, "")
	var one ForwardView
	if err := json.Unmarshal([]byte(body), &one); code != 200 || err != nil || one.Address != "f3@example.com" || !slices.Equal(one.Targets, []string{"u0@example.com"}) {
		t.Errorf("one forward: %d %s", code, body)
	}
	if code, body := adminDo(t, n, "GET", "/v1/forwards/none@example.com", tok, ""); code != 404 || !strings.Contains(body, "not_found") {
		t.Errorf("a forward that does not exist: %d %s", code, body)
	}
}
