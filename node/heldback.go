package node

import "io"

// CopyVerified copies r to w until r's io.EOF, holding back the last
// byte until then. The body readers (storage.Reader, streamedBody)
// check a body's hash only once its last byte was read, and report a
// mismatch in place of io.EOF: a receiver of a length-prefixed transfer
// (an HTTP Content-Length, an IMAP literal) that got every byte would
// take the damaged body as whole. With the last byte held back, a body
// that fails its check leaves the transfer short, which every receiver
// sees as a failure once the sender cuts the connection.
func CopyVerified(w io.Writer, r io.Reader) (int64, error) {
	hw := &heldBack{w: w}
	n, err := io.Copy(hw, r)
	if err != nil {
		return n - hw.pending(), err
	}
	return n, hw.flush()
}

// heldBack passes writes on one byte late.
type heldBack struct {
	w    io.Writer
	last [1]byte
	has  bool
}

func (h *heldBack) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if h.has {
		if _, err := h.w.Write(h.last[:]); err != nil {
			return 0, err
		}
		h.has = false
	}
	if _, err := h.w.Write(p[:len(p)-1]); err != nil {
		return 0, err
	}
	h.last[0], h.has = p[len(p)-1], true
	return len(p), nil
}

func (h *heldBack) pending() int64 {
	if h.has {
		return 1
	}
	return 0
}

func (h *heldBack) flush() error {
	if !h.has {
		return nil
	}
	h.has = false
	_, err := h.w.Write(h.last[:])
	return err
}
