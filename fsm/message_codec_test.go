package fsm

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestMessageCodec(t *testing.T) {
	for _, m := range []Message{
		{UID: 1, Hash: bodyHash("a"), Size: 0, InternalDate: -5},
		{UID: 4000000000, Hash: bodyHash("b"), Size: 50 << 20, InternalDate: 1764374400000, Flags: []string{"$Label", `\Seen`, "ünïcode"}},
	} {
		raw, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Message
		if err := got.UnmarshalBinary(raw); err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip of %+v: %+v, %v", m, got, err)
		}
		// A record written as JSON by an earlier version still decodes.
		legacy, _ := json.Marshal(m)
		got = Message{}
		if err := got.UnmarshalBinary(legacy); err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("JSON record %s: %+v, %v", legacy, got, err)
		}
		for cut := 0; cut < len(raw); cut++ {
			if err := new(Message).UnmarshalBinary(raw[:cut]); err == nil {
				t.Fatalf("a record cut at %d of %d bytes decoded", cut, len(raw))
			}
		}
	}
	if _, err := (Message{Hash: "nothex"}).MarshalBinary(); err == nil {
		t.Fatal("a bad hash was encoded")
	}
}

func BenchmarkMessageDecode(b *testing.B) {
	m := Message{UID: 77, Hash: bodyHash("x"), Size: 17000, InternalDate: 1764374400000, Flags: []string{`\Seen`, `\Flagged`}}
	bin, _ := m.MarshalBinary()
	js, _ := json.Marshal(m)
	b.Run("binary", func(b *testing.B) {
		for range b.N {
			var out Message
			out.UnmarshalBinary(bin)
		}
	})
	b.Run("json", func(b *testing.B) {
		for range b.N {
			var out Message
			json.Unmarshal(js, &out)
		}
	})
}
