package node

import (
	"encoding/json"
	"strings"
	"testing"
)

// A request body over the admin API's limit is answered 413 with the
// API's JSON error, not 400: the caller's request is not malformed, only
// too large, and must be split.
func TestAdminBodyOverLimitIs413(t *testing.T) {
	_, n := oneNodeWithMailboxes(t, 0)
	body := `{"name":"` + strings.Repeat("x", maxAdminBody) + `"}`
	code, out := adminDo(t, n, "POST", "/v1/domains", string(testSecret), body)
	var e apiError
	if code != 413 || json.Unmarshal([]byte(out), &e) != nil || e.Code != "too_large" {
		t.Fatalf("a body of %d bytes: %d %.200s", len(body), code, out)
	}
}
