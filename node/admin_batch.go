package node

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"powermail/fsm"
)

// BatchRequest is the body of POST /v1/mailboxes/batch.
type BatchRequest struct {
	Mailboxes []MailboxRequest `json:"mailboxes"`
	// SkipExisting resumes an import whose last batch's outcome was
	// hidden (a timeout, a leader change): a mailbox that already exists
	// with the row's password is skipped and counted, one that exists
	// with another password refuses the batch (skipExisting).
	SkipExisting bool `json:"skip_existing,omitempty"`
}

// ImportResult answers a batch sent with skip_existing.
type ImportResult struct {
	Created int `json:"created"`
	Skipped int `json:"skipped"`
}

// skipExisting returns the mailboxes of the batch that do not exist yet,
// and how many were left out because they exist with the row's
// password: the same hash, or for a row with a password, a hash it
// matches. The quota is not compared (an operator may have changed it
// since). A mailbox that exists with another password is no row of this
// import's (or its password changed since): the batch is refused,
// naming it, rather than the file's password be taken for the one in
// force. It reads after the read barrier; a mailbox created between that
// and the commit makes the batch fail on "exists", and a rerun skips it.
func (n *Node) skipExisting(ctx context.Context, rows []MailboxRequest) ([]MailboxRequest, int, error) {
	if err := n.Barrier(ctx); err != nil {
		return nil, 0, err
	}
	keep := rows[:0:0]
	for _, m := range rows {
		mb, err := n.state.Mailbox(m.Address)
		if err != nil {
			if !errors.Is(err, fsm.ErrNotFound) && !errors.Is(err, fsm.ErrInvalid) {
				return nil, 0, err
			}
			keep = append(keep, m) // the state machine refuses a bad address with its reason
			continue
		}
		same, err := n.samePassword(ctx, mb.PasswordHash, m)
		if err != nil {
			return nil, 0, err
		}
		if !same {
			return nil, 0, &fsm.Error{Kind: fsm.ErrExists, Msg: fmt.Sprintf(
				"mailbox %s already exists with another password (not made by this import, or its password changed since): leave its row out, or remove the mailbox", mb.Address)}
		}
	}
	return keep, len(rows) - len(keep), nil
}

// samePassword reports whether a stored hash is the one a row gives. A
// row's password is checked as a login's is (verifyPassword): within
// the node's password memory budget, and given up (ErrUnavailable) when
// ctx ends, since a rerun costs an argon2 check per existing row.
func (n *Node) samePassword(ctx context.Context, stored string, m MailboxRequest) (bool, error) {
	if m.Password != "" {
		return n.verifyPassword(ctx, stored, m.Password)
	}
	return subtle.ConstantTimeCompare([]byte(stored), []byte(m.PasswordHash)) == 1, nil
}
