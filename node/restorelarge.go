package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"powermail/fsm"
	"powermail/storage"
)

// largeFile is a message file above a restore's max_bytes: not added,
// but read for its hashes, so that a restore run again with a smaller
// limit than the one that added it finds it there (a duplicate) instead
// of counting it too large and telling the operator to run again with a
// larger limit, though nothing is missing.
type largeFile struct {
	hash, rawHash storage.Hash // as restore would store it (CRLF), and as the file is
}

// skipLarge reads the message file r of size octets, above max_bytes,
// for its hashes alone and counts it: a duplicate when folder holds it,
// else too large. name is the hash of its name, for links to it.
func (st *restoreState) skipLarge(ctx context.Context, folder string, name storage.Hash, r io.Reader, size int64) error {
	lf, err := hashLarge(r, size)
	if err != nil {
		return err
	}
	st.files[name] = storage.Hash{}
	st.large[name] = lf
	return st.countLarge(ctx, folder, lf)
}

// countLarge counts a message above max_bytes that folder should hold.
// A folder not there yet is not made for it: nothing is added to it.
func (st *restoreState) countLarge(ctx context.Context, folder string, lf largeFile) error {
	held, ok := st.held[fsm.CanonicalFolder(folder)]
	if !ok {
		var err error
		if held, err = st.viewHashes(ctx, folder); errors.Is(err, ErrNoFolder) {
			st.res.TooLarge++
			return nil
		} else if err != nil {
			return err
		}
	}
	_, dup := held[lf.hash]
	_, rawDup := held[lf.rawHash]
	if dup || rawDup {
		st.res.Duplicates++
	} else {
		st.res.TooLarge++
	}
	return nil
}

// hashLarge hashes size octets of r as the restore would store them
// (line ends made CRLF, restorecrlf.go) and as they are, holding none.
func hashLarge(r io.Reader, size int64) (largeFile, error) {
	crlf, raw := sha256.New(), sha256.New()
	w := newCRLFWriter(crlf)
	_, err := io.Copy(w, io.TeeReader(io.LimitReader(r, size), raw))
	if err == nil {
		err = w.finish()
	}
	if err != nil {
		return largeFile{}, fmt.Errorf("read a message above max_bytes: %w", err)
	}
	var lf largeFile
	crlf.Sum(lf.hash[:0])
	raw.Sum(lf.rawHash[:0])
	return lf, nil
}
