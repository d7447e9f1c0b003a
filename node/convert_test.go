package node

import (
	"encoding/json"
	"reflect"
	"testing"

	"powermail/fsm"
)

// TestConvert covers both forms an Apply value comes in: the typed value
// of a local apply, taken as it is, and the JSON form of a forwarded one.
func TestConvert(t *testing.T) {
	local := fsm.DeliverResult{UIDs: map[string]uint32{"a@example.com": 7}, Queued: "q1"}
	var got fsm.DeliverResult
	if err := convert(local, &got); err != nil || !reflect.DeepEqual(got, local) {
		t.Fatalf("local value: %+v, %v", got, err)
	}
	got.UIDs["a@example.com"] = 8 // the same map: no JSON round trip
	if local.UIDs["a@example.com"] != 8 {
		t.Fatal("a local value was copied through JSON")
	}
	var forwarded any
	raw, _ := json.Marshal(fsm.DeliverResult{UIDs: map[string]uint32{"b@example.com": 3}})
	if err := json.Unmarshal(raw, &forwarded); err != nil {
		t.Fatal(err)
	}
	got = fsm.DeliverResult{}
	if err := convert(forwarded, &got); err != nil || got.UIDs["b@example.com"] != 3 {
		t.Fatalf("forwarded value: %+v, %v", got, err)
	}
	var n int
	if err := convert("not a number", &n); err == nil {
		t.Fatal("a string converted to an int")
	}
}
