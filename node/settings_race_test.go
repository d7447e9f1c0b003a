package node

import (
	"sync"
	"testing"
	"time"

	"powermail/fsm"
)

// Two partial settings updates sent to two nodes, each read before the
// other committed (afterSettingsRead holds both reads until both are
// done): from command encoding 11 each node proposes only the field its
// request names (fsm.SettingsSet.Fields), apply merges them, and both
// changes hold. Below it each proposes the whole settings it read, and
// the later commit undoes the earlier's change, as before.
func TestSettingsUpdatesThroughTwoNodesBothHold(t *testing.T) {
	for _, tc := range []struct {
		name     string
		encoding int
		both     bool
	}{
		{"encoding 11", fsm.EncodingJSON11, true},
		{"encoding 9", fsm.EncodingJSON9, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClusterWith(t, 2, func(cfg *Config) {
				cfg.BootstrapSettings = &BootstrapSettings{Replicas: 2, WriteQuorum: 2, CommandEncoding: tc.encoding}
			})
			c.leader(10 * time.Second)
			n1, n2 := c.nodes["n1"], c.nodes["n2"]
			waitFor(t, 10*time.Second, "n2 to see the settings", func() bool {
				s, err := n2.State().Settings()
				return err == nil && s.CommandEncoding == tc.encoding
			})
			base, err := n1.State().Settings()
			if err != nil {
				t.Fatal(err)
			}
			var reads sync.WaitGroup
			reads.Add(2)
			hold := func() { reads.Done(); reads.Wait() }
			n1.afterSettingsRead, n2.afterSettingsRead = hold, hold

			var done sync.WaitGroup
			for _, r := range []struct {
				n    *Node
				body string
			}{{n1, `{"write_quorum":1,"partial":true}`}, {n2, `{"max_voters":3,"partial":true}`}} {
				done.Add(1)
				go func() {
					defer done.Done()
					if code, out := adminDo(t, r.n, "POST", "/v1/settings", string(testSecret), r.body); code != 200 {
						t.Errorf("%s through %s: %d %s", r.body, r.n.cfg.ID, code, out)
					}
				}()
			}
			done.Wait()
			if err := n1.Barrier(ctxT(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			got, err := n1.State().Settings()
			if err != nil {
				t.Fatal(err)
			}
			w, v := got.WriteQuorum == 1, got.MaxVoters == 3
			if tc.both && !(w && v) {
				t.Fatalf("after W 1 through n1 and max voters 3 through n2: %+v (from %+v), want both", got, base)
			}
			if !tc.both && w == v {
				t.Fatalf("below 11, whole settings: %+v (from %+v), want one change lost", got, base)
			}
		})
	}
}
