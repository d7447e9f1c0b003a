package frontend

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// crlfReference is the whole-buffer form of crlfReader, written for
// clarity: a CR before every LF that lacks one, and the line end a last
// line lacks (an LF after a final bare CR, CRLF after anything else).
func crlfReference(b []byte) []byte {
	var out []byte
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	if len(b) == 0 {
		return out
	}
	switch b[len(b)-1] {
	case '\n':
	case '\r':
		out = append(out, '\n')
	default:
		out = append(out, '\r', '\n')
	}
	return out
}

// chunkSource hands out data in pieces of random size (sometimes none),
// and its end with the last piece or after it, as readers may.
type chunkSource struct {
	data []byte
	rnd  *rand.Rand
	max  int
	err  error // returned at the end instead of io.EOF, if set
}

func (s *chunkSource) Read(p []byte) (int, error) {
	end := s.err
	if end == nil {
		end = io.EOF
	}
	if len(s.data) == 0 {
		return 0, end
	}
	n := min(s.rnd.IntN(s.max+1), len(p), len(s.data))
	copy(p, s.data[:n])
	s.data = s.data[n:]
	if len(s.data) == 0 && s.rnd.IntN(2) == 0 {
		return n, end
	}
	return n, nil
}

// readChunked reads all of r with buffers of random size from 1 to max,
// and returns what it read and the error that ended it (io.ErrNoProgress
// after 100 reads in a row that gave nothing or more than limit octets).
func readChunked(r io.Reader, rnd *rand.Rand, max, limit int) ([]byte, error) {
	var out []byte
	for zero := 0; zero < 100 && len(out) <= limit; {
		p := make([]byte, 1+rnd.IntN(max))
		n, err := r.Read(p)
		out = append(out, p[:n]...)
		if err != nil {
			return out, err
		}
		zero++
		if n > 0 {
			zero = 0
		}
	}
	return out, io.ErrNoProgress
}

// checkCRLFChunked runs data through crlfReader with a chunking drawn
// from seed and compares the result with crlfReference.
func checkCRLFChunked(t *testing.T, data []byte, seed uint64) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, seed>>1|1))
	maxIn, maxOut := 1+rnd.IntN(9), 1+rnd.IntN(9)
	if rnd.IntN(3) == 0 {
		maxIn, maxOut = 1+rnd.IntN(4096), 1+rnd.IntN(4096)
	}
	src := &chunkSource{data: data, rnd: rnd, max: maxIn}
	got, err := readChunked(newCRLFReader(src), rnd, maxOut, 2*len(data)+2)
	if err != io.EOF {
		t.Fatalf("input %q (chunks up to %d in, %d out): error %v, want io.EOF", data, maxIn, maxOut, err)
	}
	if want := crlfReference(data); !bytes.Equal(got, want) {
		t.Fatalf("input %q (chunks up to %d in, %d out):\n got %q\nwant %q", data, maxIn, maxOut, got, want)
	}
}

func TestCRLFReaderCases(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"\n", "\r\n"},
		{"\n\n", "\r\n\r\n"},
		{"\r\n\n\r\n", "\r\n\r\n\r\n"},
		{"a\rb\r\n", "a\rb\r\n"}, // a bare CR is not a line end
		{"a\r\r\n", "a\r\r\n"},
		{"last", "last\r\n"},             // BDAT or APPEND without a final line end
		{"last\r", "last\r\n"},           // completed as POP3 completes it
		{"x\n\rlast", "x\r\n\rlast\r\n"}, // a bare CR starting a line
		{"\x00", "\x00\r\n"},             // a NUL is an octet like any other
	} {
		for seed := range uint64(50) {
			checkCRLFChunked(t, []byte(tc.in), seed)
		}
		if got := crlfReference([]byte(tc.in)); string(got) != tc.want {
			t.Errorf("reference %q = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestCRLFReaderRandomChunks checks random messages of the octets that
// matter under random chunkings on both sides, so that a CR and its LF
// fall on every kind of boundary.
func TestCRLFReaderRandomChunks(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("\r\n\r\nab.")
	for seed := range uint64(3000) {
		data := make([]byte, rnd.IntN(200))
		for i := range data {
			data[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		checkCRLFChunked(t, data, seed)
	}
}

// A source that fails part way is passed on up to the failure, then the
// failure, and no line end is made up: the message is incomplete, and
// the delivery fails (ErrMessageIncomplete).
func TestCRLFReaderPassesErrors(t *testing.T) {
	cut := errors.New("cut")
	for seed := range uint64(200) {
		rnd := rand.New(rand.NewPCG(seed, 7))
		src := &chunkSource{data: []byte("a\nb\r\nhalf a li"), rnd: rnd, max: 5, err: cut}
		got, err := readChunked(newCRLFReader(src), rnd, 5, 100)
		if !errors.Is(err, cut) || string(got) != "a\r\nb\r\nhalf a li" {
			t.Fatalf("seed %d: read %q, %v; want the data so far and the source's error", seed, got, err)
		}
	}
}

// A message with CRLF line ends is read straight into the caller's
// buffer: no copy, no allocation.
func TestCRLFReaderNoAllocations(t *testing.T) {
	msg := bytes.Repeat([]byte("Subject: a line of text of some length\r\n"), 100)
	buf := make([]byte, 1024)
	src := bytes.NewReader(msg)
	c := newCRLFReader(src)
	allocs := testing.AllocsPerRun(100, func() {
		src.Reset(msg)
		*c = *newCRLFReader(src)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per message, want 0", allocs)
	}
}

// FuzzCRLFReader compares crlfReader under a chunking drawn from seed
// with the whole-buffer crlfReference.
//
//	go test -run '^$' -fuzz FuzzCRLFReader -fuzztime 30s ./frontend/
func FuzzCRLFReader(f *testing.F) {
	for _, s := range []string{"", "a\nb", "a\r\nb\r", "\r\r\n\n\r", "x\r", "\n.\n"} {
		f.Add([]byte(s), uint64(len(s)))
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		checkCRLFChunked(t, data, seed)
	})
}

// BenchmarkCRLFReader4K is the normaliser alone over the SMTP benchmark's
// 4 KiB message (CRLF throughout, the usual case) and over the same
// message with bare LFs, read with a 32 KiB buffer.
//
//	go test -run '^$' -bench CRLFReader4K ./frontend/
func BenchmarkCRLFReader4K(b *testing.B) {
	crlf := []byte(benchBody(4096))
	for _, tc := range []struct {
		name string
		msg  []byte
	}{{"CRLF", crlf}, {"bareLF", bytes.ReplaceAll(crlf, []byte("\r\n"), []byte("\n"))}} {
		b.Run(tc.name, func(b *testing.B) {
			buf := make([]byte, 32<<10)
			src := bytes.NewReader(tc.msg)
			b.SetBytes(int64(len(tc.msg)))
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(tc.msg)
				c := newCRLFReader(src)
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
			}
		})
	}
}
