package node

import (
	"errors"
	"testing"

	"powermail/fsm"
)

// A folder out of UIDs (fsm.ErrFolderFull, encoding 11) reaches the
// frontends as ErrFolderFull: from a Deliver's per-mailbox rejection
// (SMTP 552 5.2.2) and from an APPEND or COPY (IMAP NO [LIMIT]), never
// as a temporary failure, which a sender would retry for days.
func TestFolderFullIsNotTemporary(t *testing.T) {
	err := rejection("folder_full", "mailbox a@x: folder INBOX has given its last UID")
	if !errors.Is(err, ErrFolderFull) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("a delivery's folder_full: %v", err)
	}
	err = accessErr(fsm.FromCode("folder_full", "full"))
	if !errors.Is(err, ErrFolderFull) {
		t.Fatalf("an append's folder_full: %v", err)
	}
	if errorCode(err) != "folder_full" || errorStatus(err) != 400 {
		t.Fatalf("admin answer: %s %d", errorCode(err), errorStatus(err))
	}
}
