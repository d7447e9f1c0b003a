package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestTokenSourcesInTheREADMEsOrder runs the CLI with every mix of the
// token's sources and checks the token a node is sent, as the README
// says: --token, else --token-file, else POWERMAIL_TOKEN, else
// POWERMAIL_TOKEN_FILE, else POWERMAIL_SECRET; either flag given, no
// token variable of the environment is read.
func TestTokenSourcesInTheREADMEsOrder(t *testing.T) {
	var mu sync.Mutex
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`[]`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	file := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(name+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flagFile, envFile := file("flag-file"), file("env-file")
	for _, tc := range []struct {
		flags []string
		env   map[string]string
		want  string // "" for a failure
	}{
		{nil, map[string]string{"POWERMAIL_SECRET": "secret"}, "secret"},
		{nil, map[string]string{"POWERMAIL_TOKEN_FILE": envFile, "POWERMAIL_SECRET": "secret"}, "env-file"},
		{nil, map[string]string{"POWERMAIL_TOKEN": "env", "POWERMAIL_TOKEN_FILE": envFile, "POWERMAIL_SECRET": "secret"}, "env"},
		{[]string{"--token-file", flagFile}, map[string]string{"POWERMAIL_TOKEN": "env", "POWERMAIL_TOKEN_FILE": envFile, "POWERMAIL_SECRET": "secret"}, "flag-file"},
		{[]string{"--token", "flag"}, map[string]string{"POWERMAIL_TOKEN": "env", "POWERMAIL_TOKEN_FILE": envFile, "POWERMAIL_SECRET": "secret"}, "flag"},
		{[]string{"--token", "flag", "--token-file", flagFile}, nil, "flag"},
		{[]string{"--token-file", flagFile + ".missing"}, map[string]string{"POWERMAIL_TOKEN": "env"}, ""},
		{[]string{"--token", "flag"}, map[string]string{"POWERMAIL_TOKEN_FILE": envFile + ".missing"}, "flag"},
		{nil, nil, ""},
	} {
		c := exec.Command(binary, append([]string{"domain", "ls", "--addr", strings.TrimPrefix(srv.URL, "http://")}, tc.flags...)...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "POWERMAIL_") {
				c.Env = append(c.Env, kv)
			}
		}
		for k, v := range tc.env {
			c.Env = append(c.Env, k+"="+v)
		}
		var errb bytes.Buffer
		c.Stderr = &errb
		mu.Lock()
		got = ""
		mu.Unlock()
		err := c.Run()
		mu.Lock()
		sent := got
		mu.Unlock()
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%v %v: succeeded, sending %q", tc.flags, tc.env, sent)
		case tc.want != "" && (err != nil || sent != tc.want):
			t.Errorf("%v %v: sent %q (%v %s), want %q", tc.flags, tc.env, sent, err, errb.String(), tc.want)
		}
	}
}
