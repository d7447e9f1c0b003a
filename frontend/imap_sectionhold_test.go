package frontend

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

var errTestHashAtEnd = errors.New("the test's body hashes wrong at its end")

// hashAtEndReader reads a body whose hash fails when the read meets its
// end, after its last octet was read, as a streamed body's does. The
// error is sticky, as the node's body readers' is.
type hashAtEndReader struct {
	r   io.Reader
	err error
}

func (h *hashAtEndReader) Read(p []byte) (int, error) {
	if h.err != nil {
		return 0, h.err
	}
	k, err := h.r.Read(p)
	if err == io.EOF {
		h.err = fmt.Errorf("%w", errTestHashAtEnd)
		err = h.err
	}
	return k, err
}

// The second pass of a streamed section writes its literal as it reads
// the body; the body is checked only at its end. The literal's last
// octet is held back until the body was read to its end and passed, so
// a body that fails there leaves the literal short, whatever go-imap's
// writer still buffers when the connection is cut
// (TestIMAPStreamedSectionOfABodyFailingItsHashOnTheSecondReadIsCutShort
// on the wire). A section that ends before the body (BODY[1] of a
// multipart) reads the rest of the body before its last octet goes.
func TestIMAPResendSectionHoldsItsLastOctetUntilTheBodyPassed(t *testing.T) {
	text := strings.Repeat("0123456789abcde\n", 4096)
	plain := "Subject: s\r\n\r\n" + text
	multi := "Subject: m\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\n" + text + "\r\n--b\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--b--\r\n"
	for _, tc := range []struct {
		name string
		msg  string
		sp   imapSectionSpec
		p    *imap.SectionPartial
		want string
	}{
		{"BODY[TEXT]", plain, imapSectionSpec{specifier: imap.PartSpecifierText}, nil, text},
		{"BODY[TEXT]<10.20>", plain, imapSectionSpec{specifier: imap.PartSpecifierText}, &imap.SectionPartial{Offset: 10, Size: 20}, text[10:30]},
		{"BODY[1]", multi, imapSectionSpec{part: []int{1}}, nil, text},
		{"BINARY[1]", multi, imapSectionSpec{part: []int{1}, binary: true}, nil, text},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := int64(len(tc.want))
			var good bytes.Buffer
			if err := imapResendSection(&good, &imapErrReader{r: strings.NewReader(tc.msg)}, tc.sp, tc.p, n); err != nil || good.String() != tc.want {
				t.Fatalf("a good body: %d octets, %v; want %d", good.Len(), err, n)
			}
			var bad bytes.Buffer
			err := imapResendSection(&bad, &imapErrReader{r: &hashAtEndReader{r: strings.NewReader(tc.msg)}}, tc.sp, tc.p, n)
			if !errors.Is(err, errTestHashAtEnd) {
				t.Errorf("a body failing its hash at its end: %v, want %v", err, errTestHashAtEnd)
			}
			if int64(bad.Len()) >= n {
				t.Errorf("the whole literal (%d octets) of a body failing its hash was written", bad.Len())
			}
		})
	}
}
