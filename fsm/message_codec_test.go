package fsm

import (
	"encoding/json"
	"testing"
)

func TestMessageCodec(t *testing.T) {
	checkCodec(t, Message{UID: 1, Hash: bodyHash("a"), Size: 0, InternalDate: -5})
	checkCodec(t, Message{UID: 4000000000, Hash: bodyHash("b"), Size: 50 << 20, InternalDate: 1764374400000, Flags: []string{"$Label", `\Seen`, "ünïcode"}})
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
