package frontend

import (
	"context"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/node"
	"powermail/node/nodetest"
)

// provider is one PowerMail cluster of one node, its MX and its queue,
// whose queue sends to the destinations in routes (filled in as the
// other servers start).
type provider struct {
	c      *nodetest.Cluster
	mx     string
	routes map[string]string
}

func startProvider(t *testing.T, host string) *provider {
	t.Helper()
	p := &provider{routes: map[string]string{}}
	p.c = nodetest.StartWith(t, 1, func(cfg *node.Config) {
		cfg.Queue = node.QueueConfig{Hostname: host, Interval: 50 * time.Millisecond,
			RetryMin: 100 * time.Millisecond, RetryMax: 300 * time.Millisecond, DialTimeout: time.Second,
			DestOverride: p.routes}
	})
	cfg := testConfig()
	cfg.Hostname = host
	_, p.mx = startServer(t, cfg, p.c.Nodes[0])
	return p
}

// inboxCount is how many messages box's INBOX holds.
func (p *provider) inboxCount(t *testing.T, box string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := p.c.Nodes[0].View(ctx, box, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	return len(v.Messages)
}

func (p *provider) queueLen(t *testing.T) int {
	t.Helper()
	l, err := p.c.Nodes[0].State().QueueList("", 100)
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

// Two providers whose users forward to each other (a.test's loop@ keeps
// a copy and forwards to b.test's x@, which forwards back to loop@): the
// message goes round until a queue sees it has passed too often
// (RFC 5321 §6.3) and fails it with 5.4.6. The loop ends, the queues
// empty, and the original sender gets one failure notice.
func TestForwardLoopBetweenTwoProvidersEnds(t *testing.T) {
	far := newFakeDeliverer()
	far.set(func(f *fakeDeliverer) { f.directory["s@far.test"] = []string{"s@far.test"} })
	_, farAddr := startServer(t, testConfig(), far)
	a, b := startProvider(t, "mx.a.test"), startProvider(t, "mx.b.test")
	a.routes["b.test"], a.routes["far.test"] = b.mx, farAddr
	b.routes["a.test"], b.routes["far.test"] = a.mx, farAddr
	a.c.AddMailboxes("pw", "keep@a.test")
	a.c.Apply(&fsm.ForwardAdd{Address: "loop@a.test", Targets: []string{"keep@a.test", "x@b.test"}})
	b.c.AddMailboxes("pw", "other@b.test")
	b.c.Apply(&fsm.ForwardAdd{Address: "x@b.test", Targets: []string{"loop@a.test"}})

	cl := dial(t, a.mx)
	cl.ehlo()
	r := cl.transaction("s@far.test", []string{"loop@a.test"}, "From: s@far.test\r\nSubject: round\r\n\r\nround and round\r\n")
	checkReply(t, "DATA", r, 250, "2.0.0")
	deadline := time.Now().Add(30 * time.Second)
	for len(far.allDeliveries()) == 0 || a.queueLen(t)+b.queueLen(t) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the loop goes on: %d notices, queues %d and %d, %d copies kept", len(far.allDeliveries()), a.queueLen(t), b.queueLen(t), a.inboxCount(t, "keep@a.test"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	notices := far.allDeliveries()
	t.Logf("copies kept %d, notices %d: %s", a.inboxCount(t, "keep@a.test"), len(notices), notices[0].body)
	if len(notices) != 1 || notices[0].msg.From != "" || !strings.Contains(string(notices[0].body), "5.4.6") {
		t.Fatalf("%d notices, the first from %q:\n%s", len(notices), notices[0].msg.From, notices[0].body)
	}
}
