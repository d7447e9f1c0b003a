package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"

	"powermail/fsm"
)

// maxHeaderScan bounds the header section read to decide SMTPUTF8; a
// section longer than this is judged by its first part.
const maxHeaderScan = 256 << 10

// wireAddress is addr as a MAIL or RCPT path: its domain as an A-label
// (RFC 6531 §3.2: a domain never needs SMTPUTF8, its ASCII form says the
// same), its local part quoted where it must be (SMTPPath).
func wireAddress(addr string) string { return SMTPPath(asciiAddress(addr)) }

// utf8Plan is how one transaction treats internationalised mail (RFC
// 6531): whether MAIL carries SMTPUTF8, the recipients to send, and
// outcomes for those that cannot go to this server. A local part in
// UTF-8 needs the extension (§3.2: a client must not send such an
// address to a server that does not offer it; the mail is returned, 5.6.7
// as §3.8 assigns). A header section in UTF-8 (RFC 6532) is declared to
// a server that offers the extension, and sent as it is to one that does
// not, which is what receivers that predate it have always been given.
func (n *Node) utf8Plan(ctx context.Context, e fsm.QueueEntry, offered bool, from string, rcpts []string) (bool, []string, []fsm.RcptOutcome) {
	const why = "550 5.6.7 the receiving server does not offer SMTPUTF8, which this address needs"
	if !isASCII(wireAddress(from)) {
		if offered {
			return true, rcpts, nil
		}
		return false, nil, outcomesOf(fsm.OutcomePerm, why, rcpts)
	}
	var send, wide []string
	for _, r := range rcpts {
		if isASCII(wireAddress(r)) {
			send = append(send, r)
		} else {
			wide = append(wide, r)
		}
	}
	if offered {
		return len(wide) > 0 || n.headerIsUTF8(ctx, e.Hash), rcpts, nil
	}
	return false, send, outcomesOf(fsm.OutcomePerm, why, wide)
}

// headerIsUTF8 reports whether the header section of the stored message
// hash holds bytes outside ASCII. A body that cannot be read counts as
// ASCII: sending it will fail the same way, and be retried.
func (n *Node) headerIsUTF8(ctx context.Context, hash string) bool {
	rd, err := n.openBody(ctx, hash)
	if err != nil {
		return false
	}
	defer rd.Close()
	br := bufio.NewReader(io.LimitReader(rd, maxHeaderScan))
	if skipReturnPath(br) != nil { // ours, not sent (writeMessage)
		return false
	}
	mid := false // the last slice ended inside a line longer than br's buffer
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case !isASCII(line):
			return true
		case !mid && len(bytes.TrimRight(line, "\r\n")) == 0, err != nil && !errors.Is(err, bufio.ErrBufferFull):
			return false // the blank line, or the end
		}
		mid = errors.Is(err, bufio.ErrBufferFull)
	}
}
