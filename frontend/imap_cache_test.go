package frontend

import (
	"bufio"
	"strings"
	"testing"
)

func TestReadHeaderSection(t *testing.T) {
	long := "X-Long: " + strings.Repeat("a", 10000) + "\r\n"
	cases := []struct{ in, want string }{
		{"Subject: a\r\nFrom: b\r\n\r\nbody\r\n", "Subject: a\r\nFrom: b\r\n\r\n"},
		{"Subject: a\n\nbody\n", "Subject: a\n\n"},
		{"Subject: no body\r\n", "Subject: no body\r\n"},
		// A line longer than the reader's buffer ends in a lone "\n" read;
		// that is not the blank line.
		{long + "Subject: after\r\n\r\nbody", long + "Subject: after\r\n\r\n"},
		{"\r\nbody only\r\n", "\r\n"},
	}
	for _, c := range cases {
		got, err := readHeaderSection(bufio.NewReaderSize(strings.NewReader(c.in), 16))
		if err != nil || string(got) != c.want {
			t.Errorf("readHeaderSection(%.30q) = %.40q, %v; want %.40q", c.in, got, err, c.want)
		}
	}
	huge := strings.Repeat("X-H: v\r\n", imapMaxHeader/4)
	got, _ := readHeaderSection(bufio.NewReader(strings.NewReader(huge)))
	if len(got) < imapMaxHeader || len(got) > imapMaxHeader+16 {
		t.Errorf("a huge header was cut at %d bytes, want about %d", len(got), imapMaxHeader)
	}
}

func TestIMAPMetaCacheEvicts(t *testing.T) {
	c := newIMAPMetaCache(5400) // three entries of 500 header bytes
	for i := 0; i < 10; i++ {
		c.put(string(rune('a'+i)), &imapMeta{header: make([]byte, 500)})
	}
	if c.used > 5400 {
		t.Fatalf("cache holds %d bytes, bound 5400", c.used)
	}
	if c.get("a") != nil || c.get("j") == nil {
		t.Fatal("the oldest entry stayed or the newest went")
	}
	// A use keeps an entry over newer ones.
	c.get("h")
	c.put("k", &imapMeta{header: make([]byte, 500)})
	c.put("l", &imapMeta{header: make([]byte, 500)})
	if c.get("h") == nil {
		t.Fatal("a recently used entry was evicted first")
	}
}
