package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"powermail/fsm"
)

// recorder is a stand-in admin API that keeps each request's method,
// path and body, and answers every one with reply.
type recorder struct {
	mu    sync.Mutex
	calls []string
	reply string
}

func (rec *recorder) start(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.calls = append(rec.calls, r.Method+" "+r.URL.RequestURI()+" "+strings.TrimSpace(string(body)))
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, rec.reply)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// settings set sends only the settings the operator gave, in one
// request and without reading the others first: the node keeps the rest
// as they are then, so two operators changing different settings do not
// undo each other's change. --replicas alone still sets W to R.
func TestSettingsSetSendsOnlyTheGivenFields(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want map[string]int
	}{
		{[]string{"--max-voters", "3"}, map[string]int{"max_voters": 3}},
		{[]string{"--write-quorum", "1"}, map[string]int{"write_quorum": 1}},
		{[]string{"--replicas", "3"}, map[string]int{"replicas": 3, "write_quorum": 3}},
		{[]string{"--replicas", "3", "--write-quorum", "2"}, map[string]int{"replicas": 3, "write_quorum": 2}},
		{[]string{"--max-voters", "0"}, map[string]int{"max_voters": 0}},
	} {
		rec := &recorder{reply: `{"status":"ok","replicas":3,"write_quorum":2,"command_encoding":8,"max_voters":3}`}
		addr := rec.start(t)
		out := mustCLI(t, append([]string{"settings", "set", "--addr", addr}, tc.args...)...)
		if len(rec.calls) != 1 || !strings.HasPrefix(rec.calls[0], "POST /v1/settings ") {
			t.Fatalf("%v: requests %q, want one POST", tc.args, rec.calls)
		}
		var got map[string]any
		err := json.Unmarshal([]byte(strings.TrimPrefix(rec.calls[0], "POST /v1/settings ")), &got)
		if err != nil || got["partial"] != true {
			t.Fatalf("%v: sent %q, want it marked partial", tc.args, rec.calls[0])
		}
		if delete(got, "partial"); len(got) != len(tc.want) {
			t.Fatalf("%v: sent %q, want %v", tc.args, rec.calls[0], tc.want)
		}
		for k, v := range tc.want {
			if g, ok := got[k]; !ok || g != float64(v) {
				t.Errorf("%v: sent %q, want %v", tc.args, rec.calls[0], tc.want)
			}
		}
		if !strings.Contains(out, "replicas 3, write quorum 2, command encoding 8, max voters 3") {
			t.Errorf("%v: said %q, want the settings the node answered", tc.args, out)
		}
	}
}

// olderSettingsNode is the settings API of a release before partial
// updates: POST /v1/settings takes the whole settings, refusing a field
// it does not know, and a setting left out is taken as zero.
type olderSettingsNode struct {
	mu    sync.Mutex
	s     fsm.Settings
	posts []string
}

func (o *olderSettingsNode) start(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		o.mu.Lock()
		defer o.mu.Unlock()
		if r.Method == "GET" {
			json.NewEncoder(w).Encode(o.s)
			return
		}
		body, _ := io.ReadAll(r.Body)
		o.posts = append(o.posts, string(body))
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		var s fsm.Settings
		if err := dec.Decode(&s); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid", "message": "bad request body: " + err.Error()})
			return
		}
		o.s = s
		io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// A node of an older release takes a settings request as the whole
// settings: the partial request of this release's CLI, sent to it during
// a rolling upgrade, would set the settings not given to zero (the
// command encoding lowered, the voter cap lifted). The CLI marks its
// request as partial, which such a node refuses as an unknown field,
// and then falls back to what it did before: read the settings, change
// the ones given, send them all.
func TestSettingsSetOnANodeOfAnOlderRelease(t *testing.T) {
	old := &olderSettingsNode{s: fsm.Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: 3, MaxVoters: 5}}
	addr := old.start(t)
	mustCLI(t, "settings", "set", "--replicas", "3", "--addr", addr)
	want := fsm.Settings{Replicas: 3, WriteQuorum: 3, CommandEncoding: 3, MaxVoters: 5}
	if old.s != want {
		t.Fatalf("the older node holds %+v after sending %q, want %+v", old.s, old.posts, want)
	}
}

// TestSettingsSetHelpNamesEveryEncoding: the help of settings set says
// what each command encoding from 3 up brings, up to the newest this
// release writes; it stopped at 13 when 14 and 15 came.
func TestSettingsSetHelpNamesEveryEncoding(t *testing.T) {
	out := mustCLI(t, "settings", "set", "--help")
	long, _, _ := strings.Cut(out, "Usage:")
	for e := 3; e <= fsm.NewestEncoding; e++ {
		if !strings.Contains(long, fmt.Sprintf("(%d)", e)) {
			t.Errorf("settings set --help does not say what encoding %d brings:\n%s", e, long)
		}
	}
}
