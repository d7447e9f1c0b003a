package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Encode writes h as JSON lines, one op per line.
func (h History) Encode(w io.Writer) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range h {
		if err := enc.Encode(&h[i]); err != nil {
			return fmt.Errorf("encode op %d: %w", i, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("flush history: %w", err)
	}
	return nil
}

// Decode reads a JSON-lines history. Blank lines are skipped. Each op's
// Index is set to its position; its Type must be one of the four op types.
func Decode(r io.Reader) (History, error) {
	br := bufio.NewReader(r)
	var h History
	for line := 1; ; line++ {
		raw, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(raw)) > 0 {
			op, derr := decodeOp(raw)
			if derr != nil {
				return nil, fmt.Errorf("history line %d: %w", line, derr)
			}
			op.Index = len(h)
			h = append(h, op)
		}
		if errors.Is(err, io.EOF) {
			return h, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read history line %d: %w", line, err)
		}
	}
}

func decodeOp(raw []byte) (Op, error) {
	var op Op
	if err := json.Unmarshal(raw, &op); err != nil {
		return Op{}, fmt.Errorf("decode op: %w", err)
	}
	if !op.Type.Valid() {
		return Op{}, fmt.Errorf("op type %q: %w", op.Type, ErrMalformed)
	}
	return op, nil
}

// WriteFile writes h to path as JSON lines.
func (h History) WriteFile(path string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create history file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close history file: %w", cerr)
		}
	}()
	return h.Encode(f)
}

// ReadFile reads a JSON-lines history from path.
func ReadFile(path string) (History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open history file: %w", err)
	}
	defer f.Close()
	h, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}
