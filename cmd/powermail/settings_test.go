package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
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
		var got map[string]int
		if err := json.Unmarshal([]byte(strings.TrimPrefix(rec.calls[0], "POST /v1/settings ")), &got); err != nil || len(got) != len(tc.want) {
			t.Fatalf("%v: sent %q, want %v", tc.args, rec.calls[0], tc.want)
		}
		for k, v := range tc.want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%v: sent %q, want %v", tc.args, rec.calls[0], tc.want)
			}
		}
		if !strings.Contains(out, "replicas 3, write quorum 2, command encoding 8, max voters 3") {
			t.Errorf("%v: said %q, want the settings the node answered", tc.args, out)
		}
	}
}
