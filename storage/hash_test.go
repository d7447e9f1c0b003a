package storage

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestHashStringParse(t *testing.T) {
	h := HashBytes([]byte("hello"))
	const want = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	if h.String() != want {
		t.Fatalf("String = %s, want %s", h, want)
	}
	for _, s := range []string{want, strings.ToUpper(want)} {
		got, err := ParseHash(s)
		if err != nil || got != h {
			t.Fatalf("ParseHash(%q) = %s, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", want[:63], want + "0", "zz" + want[2:]} {
		if _, err := ParseHash(bad); err == nil {
			t.Fatalf("ParseHash(%q) succeeded", bad)
		} else {
			wantErrIs(t, err, ErrInvalidHash)
		}
	}
	js, err := json.Marshal(map[string]Hash{"h": h})
	if err != nil || string(js) != `{"h":"`+want+`"}` {
		t.Fatalf("json = %s, %v", js, err)
	}
	var back map[string]Hash
	if err := json.Unmarshal(js, &back); err != nil || back["h"] != h {
		t.Fatalf("json round trip = %v, %v", back, err)
	}
}
