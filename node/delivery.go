package node

import (
	"errors"
	"time"
)

// Delivery errors, returned (wrapped) by Resolve and Deliver. The frontend
// maps each to one SMTP reply; see frontend/DESIGN.md.
var (
	// ErrUnknownRecipient: no mailbox or forward for the address (550 5.1.1).
	ErrUnknownRecipient = errors.New("unknown recipient")
	// ErrNotLocal: the domain is not hosted here; relaying is refused (550 5.7.1).
	ErrNotLocal = errors.New("domain not hosted here")
	// ErrExternalTarget: the address forwards outside the cluster, which
	// needs the outbound queue (451 4.3.0 until it exists).
	ErrExternalTarget = errors.New("forward to an external address")
	// ErrOverQuota: the mailbox is full (452 4.2.2).
	ErrOverQuota = errors.New("mailbox over quota")
	// ErrUnavailable: no leader, no quorum, too few live replicas, or a
	// timeout; the sender should retry (451 4.3.0).
	ErrUnavailable = errors.New("temporarily unavailable")
)

// Message is one accepted message to commit.
type Message struct {
	From      string    // envelope sender ("" for the null sender)
	Mailboxes []string  // canonical local mailbox addresses (from Resolve)
	Received  time.Time // internal date
}

// DeliveryResult reports the outcome per mailbox. A mailbox missing from
// Rejected was delivered.
type DeliveryResult struct {
	Rejected map[string]error
}
