package node

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// headerEnded passes a message through and, when it ends inside its
// header section, supplies the line end and the blank line that would
// close it. RFC 5322 §3.5 makes the body, and the blank line before it,
// optional, and the frontend takes such a message; a DKIM signer and
// verifier (RFC 6376 §3.7) need the blank line to find where the header
// ends, so a signed message is signed and sent with it.
type headerEnded struct {
	br      *bufio.Reader
	inBody  bool   // past the blank line, or at the end: read br as is
	pending []byte // a header line not yet returned
}

func newHeaderEnded(br *bufio.Reader) *headerEnded { return &headerEnded{br: br} }

func (h *headerEnded) Read(p []byte) (int, error) {
	for len(h.pending) == 0 {
		if h.inBody {
			return h.br.Read(p)
		}
		line, err := h.br.ReadBytes('\n')
		switch {
		case errors.Is(err, io.EOF):
			h.inBody = true // br has no more; Read passes its EOF on
			if len(line) > 0 && line[len(line)-1] != '\n' {
				line = append(line, "\r\n"...)
			}
			line = append(line, "\r\n"...)
		case err != nil:
			return 0, err
		case len(bytes.TrimRight(line, "\r\n")) == 0:
			h.inBody = true
		}
		h.pending = line
	}
	k := copy(p, h.pending)
	h.pending = h.pending[k:]
	return k, nil
}
