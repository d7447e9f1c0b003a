package frontend

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"net/textproto"
	"strings"

	"github.com/emersion/go-smtp"
)

// MaxSubmissionHeader bounds the header section of a submitted message,
// which the author check reads before anything is stored.
const MaxSubmissionHeader = 256 << 10

// checkAuthor reads the header section of a message submitted by the
// session's user and checks who it names as its author. The envelope
// check (checkSubmissionSender) alone would let a user put a colleague
// in From: and have the message leave DKIM-signed for the domain, so
// the From: and Sender: fields (RFC 5322 §3.6.2) must name addresses
// the user may send as (ownsSender: its own, with or without a +detail,
// or an alias of it), as MAIL FROM must. The envelope sender, which MAIL
// checked, is not looked up again, so the usual message (the same
// address in both) costs one directory read. A message without a From:
// field is refused: RFC 5322 §3.6 requires one.
//
// It returns the rest of the message to store, from its first byte, and
// a reply when the message is refused. A failure to read the message
// from the client is left in body, for judge.
func (s *session) checkAuthor(body *bodyReader, envelope string) (io.Reader, *smtp.SMTPError) {
	br := bufio.NewReaderSize(body, 4096)
	hdr, complete, err := readHeaderSection(br, MaxSubmissionHeader)
	rest := io.MultiReader(bytes.NewReader(hdr), br)
	switch {
	case body.err != nil:
		return rest, s.replyForBodyError(body.err)
	case err != nil:
		return rest, replyTransferFailed()
	case !complete:
		return rest, replyHeaderTooBig(MaxSubmissionHeader)
	}
	fields, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(hdr))).ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) {
		return rest, replyMalformedHeader()
	}
	from, sender := authorFields(fields)
	if len(from) == 0 {
		return rest, replyNoAuthor()
	}
	for _, v := range append(from, sender...) {
		addrs, err := authorParser().ParseList(v)
		if err != nil || len(addrs) == 0 {
			return rest, replyAuthorNotOwned(s.user)
		}
		for _, a := range addrs {
			if a.Address == envelope {
				continue // checked at MAIL
			}
			own, err := s.ownsSender(a.Address)
			switch {
			case err != nil:
				return rest, replyUnavailable()
			case !own:
				return rest, replyAuthorNotOwned(s.user)
			}
		}
	}
	return rest, nil
}

// authorFields are the values of the From: and Sender: fields, in any
// case and also in the obsolete form with blanks before the colon (RFC
// 5322 §4.5.6), which textproto files under a key of its own and a DKIM
// signer and mail readers take as the field itself.
func authorFields(h textproto.MIMEHeader) (from, sender []string) {
	for k, vs := range h {
		switch name := strings.TrimRight(k, " \t"); {
		case strings.EqualFold(name, "From"):
			from = append(from, vs...)
		case strings.EqualFold(name, "Sender"):
			sender = append(sender, vs...)
		}
	}
	return from, sender
}

// authorParser reads addresses whatever the charset of their display
// names (RFC 2047), which the check does not look at.
func authorParser() *mail.AddressParser {
	return &mail.AddressParser{WordDecoder: &mime.WordDecoder{
		CharsetReader: func(_ string, input io.Reader) (io.Reader, error) { return input, nil },
	}}
}

// readHeaderSection reads lines up to and including the first empty one
// (or EOF). It stops once it holds max bytes or more, and then reports
// the section incomplete.
func readHeaderSection(r *bufio.Reader, max int) (hdr []byte, complete bool, err error) {
	var out bytes.Buffer
	midLine := false // the last read ended inside a long line
	for out.Len() < max {
		line, err := r.ReadSlice('\n')
		out.Write(line)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			midLine = true
			continue
		case errors.Is(err, io.EOF):
			return out.Bytes(), true, nil
		case err != nil: // nothing partial: a cache must not keep it
			return nil, false, fmt.Errorf("read header: %w", err)
		case !midLine && len(bytes.TrimRight(line, "\r\n")) == 0:
			return out.Bytes(), true, nil
		}
		midLine = false
	}
	return out.Bytes(), false, nil
}
