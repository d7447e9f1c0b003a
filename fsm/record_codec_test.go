package fsm

import (
	"encoding"
	"encoding/json"
	"reflect"
	"testing"
)

// binaryRecord is a record type with a binary codec.
type binaryRecord[T any] interface {
	*T
	encoding.BinaryUnmarshaler
}

// checkCodec checks v's binary codec (checkBinaryCodec) and that the JSON
// record an earlier version wrote still decodes.
func checkCodec[T encoding.BinaryMarshaler, P binaryRecord[T]](t *testing.T, v T) {
	t.Helper()
	checkBinaryCodec[T, P](t, v)
	legacy, _ := json.Marshal(v)
	var got T
	if err := P(&got).UnmarshalBinary(legacy); err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("JSON record %s: %+v, %v", legacy, got, err)
	}
}

// checkBinaryCodec round-trips v through its binary codec, and checks that
// every truncation of the encoding, and the encoding with a byte more,
// fail to decode.
func checkBinaryCodec[T encoding.BinaryMarshaler, P binaryRecord[T]](t *testing.T, v T) {
	t.Helper()
	raw, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got T
	if err := P(&got).UnmarshalBinary(raw); err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("round trip of %+v: %+v, %v", v, got, err)
	}
	for cut := 0; cut < len(raw); cut++ {
		if err := P(new(T)).UnmarshalBinary(raw[:cut]); err == nil {
			t.Fatalf("a record cut at %d of %d bytes decoded", cut, len(raw))
		}
	}
	if err := P(new(T)).UnmarshalBinary(append(raw, 0)); err == nil {
		t.Fatalf("a record with a trailing byte decoded")
	}
}

func TestFolderCodec(t *testing.T) {
	checkCodec(t, Folder{Name: "INBOX", ID: 1})
	checkCodec(t, Folder{Name: "Archiv/2026 – ü", ID: 1 << 40, UIDValidity: 4000000000, UIDNext: 1<<32 - 1,
		SpecialUse: `\Archive`, Subscribed: true, ModSeq: 1 << 50, Messages: 12, Bytes: 50 << 30, Unseen: 3, Deleted: -1, LowUID: 1<<32 - 2})
	// A record written before LowUID existed is this encoding without the
	// flag, and reads as LowUID 0 (scan from UID 1).
	old, _ := Folder{Name: "INBOX", ID: 1, UIDNext: 7}.MarshalBinary()
	f := Folder{LowUID: 5}
	if err := f.UnmarshalBinary(old); err != nil || f.LowUID != 0 {
		t.Fatalf("old record: LowUID %d, err %v", f.LowUID, err)
	}
	// A flag bit this version does not know would be lost by the next
	// write: such a record is refused, not half read.
	raw, _ := Folder{Name: "INBOX", ID: 1}.MarshalBinary()
	raw[1+1+5+4] |= 0x80 // name "INBOX", then id, uid_validity, uid_next and special_use (one byte each)
	if err := new(Folder).UnmarshalBinary(raw); err == nil {
		t.Fatal("a folder record with an unknown flag decoded")
	}
}

func TestBodyCodec(t *testing.T) {
	checkCodec(t, Body{})
	checkCodec(t, Body{Size: 50 << 20, Refs: -2, Replicas: []string{"n1", "node-七"}, CreatedIndex: 1 << 60, Collecting: 99})
	// A replica count larger than the record is refused before allocating.
	if err := new(Body).UnmarshalBinary([]byte{bodyCodecV1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}); err == nil {
		t.Fatal("a body record claiming 4 billion replicas decoded")
	}
}

// FuzzRecordDecode feeds arbitrary bytes to every binary record decoder
// and to the Deliver command's: damaged input is an error, never a panic.
func FuzzRecordDecode(f *testing.F) {
	for _, v := range []encoding.BinaryMarshaler{Folder{Name: "INBOX", ID: 3, UIDNext: 9}, Body{Size: 4, Refs: 1, Replicas: []string{"n1"}},
		Mailbox{Address: "a@b.c"}, Message{UID: 1, Hash: bodyHash("x"), Flags: []string{`\Seen`}},
		Deliver{Hash: bodyHash("y"), Replicas: []string{"n1"}, Queue: &QueuePart{From: "a@b.c"}}} {
		raw, _ := v.MarshalBinary()
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, v := range []encoding.BinaryUnmarshaler{new(Folder), new(Body), new(Mailbox), new(Message), new(Deliver)} {
			v.UnmarshalBinary(raw)
		}
	})
}
