package frontend

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"powermail/node"
)

// imapFetchPlan is one message's FETCH response, worked out before the
// response begins so that a failure can still be answered NO: the
// header data from the cache, and each section's literal length (and
// its octets, when small) from one pass over the body.
type imapFetchPlan struct {
	s *imapSession
	m *imapMsg
	o *imap.FetchOptions

	body     node.Body // nil when nothing is read from the store
	src      *imapErrReader
	envelope *imap.Envelope
	bstruct  imap.BodyStructure
	sections [][]byte // header sections, from the cache
	secLens  []int64  // streamed sections' literal lengths
	secKept  [][]byte // and their octets, when small (imapSectionHold)
	binLens  []int64
	binKept  [][]byte
	binSizes []uint32
	room     int // what is left of the message's imapSectionHold
}

func newIMAPFetchPlan(s *imapSession, m *imapMsg, o *imap.FetchOptions) *imapFetchPlan {
	return &imapFetchPlan{s: s, m: m, o: o,
		sections: make([][]byte, len(o.BodySection)),
		secLens:  make([]int64, len(o.BodySection)),
		secKept:  make([][]byte, len(o.BodySection)),
		binLens:  make([]int64, len(o.BinarySection)),
		binKept:  make([][]byte, len(o.BinarySection)),
		binSizes: make([]uint32, len(o.BinarySectionSize)),
		room:     imapSectionHold,
	}
}

// fromCache takes the envelope, header sections and body structure from
// the node's caches: no body read or parse on a warm mailbox.
func (p *imapFetchPlan) fromCache() error {
	o := p.o
	if o.Envelope || slices.ContainsFunc(o.BodySection, imapHeaderOnly) {
		meta, err := p.s.srv.headerMeta(p.s.ctx, p.m.hash)
		if err != nil {
			return fmt.Errorf("read header of uid %d: %w", p.m.uid, err)
		}
		if o.Envelope {
			p.envelope = imapEnvelope(meta.parsedHeader())
		}
		for k, bs := range o.BodySection {
			if imapHeaderOnly(bs) {
				p.sections[k] = meta.headerSection(bs)
			}
		}
	}
	if o.BodyStructure != nil {
		if cached := p.s.srv.meta.get(p.m.hash); cached != nil && cached.bstruct != nil {
			p.bstruct = cached.bstruct
		}
	}
	return nil
}

// measure reads body for what the cache did not have: the body
// structure, and each section's length. The first pass over each section
// measures it, keeping the octets of its <partial> window while they fit
// the message's share of memory; a section not kept is read again when
// its literal is written (imap_section.go).
func (p *imapFetchPlan) measure(body node.Body) error {
	p.body, p.src = body, &imapErrReader{r: body}
	o, uid := p.o, p.m.uid
	if o.BodyStructure != nil && p.bstruct == nil {
		bs, err := p.s.srv.bodyStructure(p.m.hash, body)
		if err != nil {
			return fmt.Errorf("read body of uid %d: %w", uid, err)
		}
		p.bstruct = bs
	}
	for k, bs := range o.BodySection {
		if imapWholeBody(bs) || imapHeaderOnly(bs) {
			continue // streamed when written, or from the header
		}
		n, kept, err := p.section(imapBodySpec(bs), bs.Partial)
		if err != nil {
			return err
		}
		p.secLens[k], p.secKept[k] = imapWindowLen(n, bs.Partial), kept
	}
	for k, bs := range o.BinarySection {
		n, kept, err := p.section(imapBinarySpec(bs.Part), bs.Partial)
		if err != nil {
			return err
		}
		p.binLens[k], p.binKept[k] = imapWindowLen(n, bs.Partial), kept
	}
	for k, bs := range o.BinarySectionSize {
		n, _, err := p.section(imapBinarySpec(bs.Part), &imap.SectionPartial{})
		if err != nil {
			return err
		}
		p.binSizes[k] = uint32(min(n, 1<<32-1))
	}
	if p.src.err != nil {
		return fmt.Errorf("read body of uid %d: %w", uid, p.src.err)
	}
	return nil
}

// section measures one section from the body's start: its length and,
// while they fit, the octets of its window.
func (p *imapFetchPlan) section(sp imapSectionSpec, partial *imap.SectionPartial) (int64, []byte, error) {
	if _, err := p.body.Seek(0, io.SeekStart); err != nil {
		return 0, nil, fmt.Errorf("rewind body of uid %d: %w", p.m.uid, err)
	}
	if p.src.err != nil {
		return 0, nil, p.src.err
	}
	keep := &imapCapture{room: &p.room}
	count := imapNewWindow(keep, partial)
	if err := imapWriteSection(count, p.src, sp); err != nil {
		return 0, nil, fmt.Errorf("uid %d: %w", p.m.uid, err)
	}
	return count.total, keep.kept(), nil
}

// writeAttributes writes the items that cannot fail.
func (p *imapFetchPlan) writeAttributes(rw *imapserver.FetchResponseWriter, seenChanged bool) {
	o, m := p.o, p.m
	if o.UID {
		rw.WriteUID(imap.UID(m.uid))
	}
	if o.Flags || seenChanged {
		rw.WriteFlags(imapFlags(m.flags))
	}
	if o.InternalDate {
		rw.WriteInternalDate(time.UnixMilli(m.date))
	}
	if o.RFC822Size {
		rw.WriteRFC822Size(m.size)
	}
	if o.Envelope {
		rw.WriteEnvelope(p.envelope)
	}
	if o.BodyStructure != nil {
		rw.WriteBodyStructure(p.bstruct)
	}
}

// writeSections writes the literals: from what was kept, or read again
// from the body.
func (p *imapFetchPlan) writeSections(rw *imapserver.FetchResponseWriter) error {
	for k, bs := range p.o.BodySection {
		var err error
		switch {
		case imapWholeBody(bs):
			err = p.s.streamBody(rw, bs, p.body)
		case imapHeaderOnly(bs):
			err = imapKeptLiteral(rw.WriteBodySection(bs, int64(len(p.sections[k]))), p.sections[k])
		case p.secKept[k] != nil:
			err = imapKeptLiteral(rw.WriteBodySection(bs, p.secLens[k]), p.secKept[k])
		default:
			err = p.s.streamSection(rw.WriteBodySection(bs, p.secLens[k]), p.secLens[k], p.body, p.src, imapBodySpec(bs), bs.Partial)
		}
		if err != nil {
			return err
		}
	}
	for k, bs := range p.o.BinarySection {
		var err error
		if p.binKept[k] != nil {
			err = imapKeptLiteral(rw.WriteBinarySection(bs, p.binLens[k]), p.binKept[k])
		} else {
			err = p.s.streamSection(rw.WriteBinarySection(bs, p.binLens[k]), p.binLens[k], p.body, p.src, imapBinarySpec(bs.Part), bs.Partial)
		}
		if err != nil {
			return err
		}
	}
	for k, bs := range p.o.BinarySectionSize {
		rw.WriteBinarySectionSize(bs, p.binSizes[k])
	}
	return nil
}

// imapKeptLiteral writes octets held in memory as a literal; a failure is
// the connection's.
func imapKeptLiteral(wc io.WriteCloser, b []byte) error {
	_, err := wc.Write(b)
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return imapWriteError{err}
	}
	return nil
}
