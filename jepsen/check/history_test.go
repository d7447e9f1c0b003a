package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// fullHistory uses every field of Op at least once.
func fullHistory() History {
	b := &hb{}
	b.inv(0, FDeliver, "", msg("m1"), to("a@x", "b@x"), flags(`\Seen`))
	b.ok(0, FDeliver, "", msg("m1"), assigned(7))
	b.inv(1, FRead, "a@x", final())
	b.ok(1, FRead, "a@x", final(), validity(3), uidNext(8), messages(m(7, "m1"), m(0, "pop")))
	b.inv(2, FDirAdd, "box")
	b.fail(2, FDirAdd, "box", errCode(ErrExists))
	b.inv(2, FDirRead, "box")
	b.ok(2, FDirRead, "box", exists(false))
	b.inv(3, FStoreFlags, "a@x", msg("m1"), mode(ModeAdd), flags(`\Flagged`, "$Junk"))
	b.info(3, FStoreFlags, "a@x", errCode("timeout"), onNode("n9"))
	return b.h
}

func TestJSONLinesRoundTrip(t *testing.T) {
	h := fullHistory()
	var buf bytes.Buffer
	if err := h.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != len(h) {
		t.Fatalf("got %d lines for %d ops", n, len(h))
	}
	got, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Fatalf("round trip changed the history:\n got %+v\nwant %+v", got, h)
	}
}

func TestJSONFieldNames(t *testing.T) {
	line, err := json.Marshal(fullHistory()[3])
	if err != nil {
		t.Fatal(err)
	}
	want := `{"index":3,"time":40,"process":1,"type":"ok","f":"read","key":"a@x","node":"n2",` +
		`"final":true,"uid_validity":3,"uid_next":8,"messages":[{"uid":7,"msg_id":"m1"},{"msg_id":"pop"}]}`
	if string(line) != want {
		t.Fatalf("got  %s\nwant %s", line, want)
	}
}

func TestDecodeSkipsBlankLinesAndRenumbers(t *testing.T) {
	in := "\n{\"index\":9,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n\n" +
		"{\"time\":2,\"process\":0,\"type\":\"ok\",\"f\":\"read\"}" // no final newline
	h, err := Decode(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].Index != 0 || h[1].Index != 1 || h[1].Time != 2 {
		t.Fatalf("got %+v", h)
	}
}

func TestDecodeErrors(t *testing.T) {
	for name, in := range map[string]string{
		"bad type": `{"type":"done","f":"read"}`,
		"bad json": `{"type":`,
	} {
		_, err := Decode(strings.NewReader("{\"type\":\"invoke\",\"f\":\"read\"}\n" + in + "\n"))
		if err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%s: got %v, want an error naming line 2", name, err)
		}
		if name == "bad type" && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v does not wrap ErrMalformed", name, err)
		}
	}
}

func TestFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.jsonl")
	h := fullHistory()
	if err := h.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Fatal("file round trip changed the history")
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("reading a missing file succeeded")
	}
}

func TestRecorderConcurrent(t *testing.T) {
	var buf bytes.Buffer
	rec := NewRecorder(&buf)
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				if _, err := rec.Record(Op{Process: p, Type: Invoke, F: FRead, Key: "a"}); err != nil {
					t.Error(err)
				}
				if _, err := rec.Record(Op{Process: p, Type: OK, F: FRead, Key: "a"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	h := rec.History()
	if len(h) != 200 {
		t.Fatalf("recorded %d ops", len(h))
	}
	for i, op := range h {
		if op.Index != i || (i > 0 && op.Time < h[i-1].Time) {
			t.Fatalf("op %d: index %d time %d after %d", i, op.Index, op.Time, h[max(i-1, 0)].Time)
		}
	}
	streamed, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(streamed, h) {
		t.Fatal("streamed history differs from recorded history")
	}
	if _, err := Pair(h); err != nil {
		t.Fatal(err)
	}
}
