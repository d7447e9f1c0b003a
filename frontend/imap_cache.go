package frontend

import (
	"bufio"
	"bytes"
	"container/list"
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/textproto"
)

// The body cache. Bodies are content-addressed and never change, so what
// the server learns of one (its header section, its BODYSTRUCTURE) is true
// for ever and can be shared by every session of this node. ENVELOPE,
// header FETCHes and header SEARCH criteria then cost no body read on a
// warm mailbox. The cache is an LRU bounded in bytes.

// DefaultIMAPCacheBytes bounds the body cache.
const DefaultIMAPCacheBytes = 64 << 20

// imapMaxHeader bounds a cached header section; a longer one is truncated
// at a line boundary (what parsed is what a client gets, as before).
const imapMaxHeader = 256 << 10

type imapMeta struct {
	header  []byte // header section including the blank line
	bstruct imap.BodyStructure
	cost    int64

	// parsed is the header, parsed once on first use and then only read
	// (shared by every session that searches this body).
	parseOnce sync.Once
	parsed    textproto.Header

	// Answers derived from the header, computed on first use (mu guards
	// them). sec is the last header section answered (without a
	// <partial> window), for the field list secKey: clients ask for the
	// same fields of every message, so a header is filtered once. lowered
	// holds, per header key searched (lower case), the field values
	// decoded (RFC 2047) and folded (imap_fold.go): SEARCH FROM, SUBJECT, HEADER ...
	// on a warm mailbox then costs a substring test per message.
	mu      sync.Mutex
	secKey  string
	sec     []byte
	lowered map[string][]string
}

// loweredValues returns the decoded, folded values of key's fields.
func (m *imapMeta) loweredValues(key string) []string {
	low := strings.ToLower(key)
	m.mu.Lock()
	vs, ok := m.lowered[low]
	m.mu.Unlock()
	if ok {
		return vs
	}
	vs = []string{} // not nil: "key present with no fields" is cached too
	h := m.parsedHeader()
	folder := newIMAPFolder()
	for fields := h.FieldsByKey(key); fields.Next(); {
		v := fields.Value()
		if dec, err := imapWordDecoder.DecodeHeader(v); err == nil {
			v = dec
		}
		vs = append(vs, string(folder.fold(nil, []byte(v))))
	}
	m.mu.Lock()
	if m.lowered == nil {
		m.lowered = map[string][]string{}
	}
	m.lowered[low] = vs
	m.mu.Unlock()
	return vs
}

// headerSection answers a BODY[HEADER...] item from the cached header.
func (m *imapMeta) headerSection(bs *imap.FetchItemBodySection) []byte {
	key := imapHeaderKey(bs)
	m.mu.Lock()
	out, ok := m.sec, m.secKey == key && m.sec != nil
	m.mu.Unlock()
	if !ok {
		if key == "*" {
			// The whole header as stored: a line the parser stops at
			// (no colon) must not cut off the fields after it.
			out = imapWholeHeader(m.header)
		} else {
			out = imapHeaderEnd(imapHeaderFields(m.parsedHeader(), bs), len(m.header) >= imapMaxHeader || imapEndsBlank(m.header))
		}
		m.mu.Lock()
		m.secKey, m.sec = key, out
		m.mu.Unlock()
	}
	return imapPartial(out, bs.Partial)
}

// imapHeaderKey names the fields a header section keeps.
func imapHeaderKey(bs *imap.FetchItemBodySection) string {
	switch {
	case len(bs.HeaderFields) > 0:
		return "+" + strings.Join(bs.HeaderFields, " ")
	case len(bs.HeaderFieldsNot) > 0:
		return "-" + strings.Join(bs.HeaderFieldsNot, " ")
	}
	return "*"
}

// parsedHeader returns the parsed header section.
func (m *imapMeta) parsedHeader() textproto.Header {
	m.parseOnce.Do(func() {
		m.parsed = imapReadHeader(bufio.NewReader(bytes.NewReader(m.header)))
	})
	return m.parsed
}

// imapMetaCache is a CLOCK approximation of an LRU: a hit only sets the
// entry's referenced bit, under the read lock, so the SEARCHes of many
// sessions (a lookup per message) neither serialise nor rewrite list
// pointers; eviction gives a referenced entry a second chance.
type imapMetaCache struct {
	mu   sync.RWMutex
	max  int64
	used int64
	lru  *list.List // of *imapMetaEntry, newest or last spared first
	m    map[string]*list.Element
}

type imapMetaEntry struct {
	hash string
	meta *imapMeta
	ref  atomic.Bool // used since it was added or last spared
}

func newIMAPMetaCache(max int64) *imapMetaCache {
	return &imapMetaCache{max: max, lru: list.New(), m: map[string]*list.Element{}}
}

func (c *imapMetaCache) get(hash string) *imapMeta {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e, ok := c.m[hash]; ok {
		ent := e.Value.(*imapMetaEntry)
		if !ent.ref.Load() {
			ent.ref.Store(true)
		}
		return ent.meta
	}
	return nil
}

// put stores m (replacing an older entry of the same hash) and evicts
// entries not used since they were last considered, beyond the bound.
func (c *imapMetaCache) put(hash string, m *imapMeta) {
	m.cost = metaCost(m.header) + imapStructureCost(m.bstruct)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[hash]; ok {
		c.used -= e.Value.(*imapMetaEntry).meta.cost
		c.lru.Remove(e)
	}
	c.m[hash] = c.lru.PushFront(&imapMetaEntry{hash: hash, meta: m})
	c.used += m.cost
	for spared := 0; c.used > c.max && c.lru.Len() > 1; {
		old := c.lru.Back()
		ent := old.Value.(*imapMetaEntry)
		if ent.ref.Load() && spared < c.lru.Len() {
			ent.ref.Store(false)
			c.lru.MoveToFront(old)
			spared++
			continue
		}
		c.lru.Remove(old)
		delete(c.m, ent.hash)
		c.used -= ent.meta.cost
	}
}

// metaCost is what an entry with this header costs the cache bound once
// every lazy part is built: the raw header, a filtered section and the
// searched values (up to its size each), go-message's parsed header
// (with v0.18, its slices and maps come to about 500 bytes per field on
// top of the text) and the entry's own bookkeeping.
// TestIMAPMetaCostCoversItsMemory measures it.
func metaCost(header []byte) int64 {
	fields := 0
	for rest := header; len(rest) > 0; {
		if c := rest[0]; c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			fields++ // a line that does not continue a field starts one
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	return 3*int64(len(header)) + 500*int64(fields) + 768
}

// imapStructureCost is what a BODYSTRUCTURE costs the cache bound: its
// nodes, maps and strings, about 1 KiB per described part with a few
// parameters (a flat count of 1 KiB let the structures of messages of
// thousands of parts, each about 10 MB, pass for nothing).
// TestIMAPMetaCostCoversItsStructure measures it.
func imapStructureCost(bs imap.BodyStructure) int64 {
	params := func(m map[string]string) int64 {
		n := int64(0)
		if m != nil {
			n = 200
		}
		for k, v := range m {
			n += int64(len(k)+len(v)) + 64
		}
		return n
	}
	switch b := bs.(type) {
	case *imap.BodyStructureMultiPart:
		n := 256 + int64(len(b.Subtype))
		if b.Extended != nil {
			n += 128 + params(b.Extended.Params)
			if d := b.Extended.Disposition; d != nil {
				n += 64 + params(d.Params)
			}
		}
		for _, c := range b.Children {
			n += imapStructureCost(c)
		}
		return n
	case *imap.BodyStructureSinglePart:
		n := 400 + params(b.Params) + int64(len(b.Type)+len(b.Subtype)+len(b.ID)+len(b.Description)+len(b.Encoding))
		if e := b.Extended; e != nil {
			n += 128 + int64(len(e.Location))
			if d := e.Disposition; d != nil {
				n += 64 + params(d.Params)
			}
			for _, l := range e.Language {
				n += 16 + int64(len(l))
			}
		}
		if m := b.MessageRFC822; m != nil {
			n += 1024 + imapStructureCost(m.BodyStructure) // the envelope
		}
		return n
	}
	return 0
}

// headerMeta returns the cache entry of a body, with its header section
// read, as far as the blank line, if it was not cached. The read is bounded
// by TransferTimeout; a hit makes no context (a timer per message was 7%
// of a node's CPU on a warm FETCH load).
func (srv *IMAPServer) headerMeta(parent context.Context, hash string) (*imapMeta, error) {
	if m := srv.meta.get(hash); m != nil && m.header != nil {
		return m, nil
	}
	ctx, cancel := context.WithTimeout(parent, srv.cfg.TransferTimeout)
	defer cancel()
	b, err := srv.store.OpenBody(ctx, hash)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	h, _, err := readHeaderSection(bufio.NewReader(b), imapMaxHeader)
	if err != nil {
		return nil, err
	}
	m := &imapMeta{header: h}
	srv.meta.put(hash, m)
	return m, nil
}

// bodyStructure returns a body's BODYSTRUCTURE, computing it from body
// (positioned anywhere) if it is not cached.
func (srv *IMAPServer) bodyStructure(hash string, body io.ReadSeeker) (imap.BodyStructure, error) {
	m := srv.meta.get(hash)
	if m != nil && m.bstruct != nil {
		return m.bstruct, nil
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	src := &imapErrReader{r: body}
	bs := imapBodyStructure(src)
	if src.err != nil {
		return nil, src.err
	}
	next := &imapMeta{bstruct: bs}
	if m != nil {
		next.header = m.header
	} else if _, err := body.Seek(0, io.SeekStart); err == nil {
		next.header, _, _ = readHeaderSection(bufio.NewReader(body), imapMaxHeader)
	}
	srv.meta.put(hash, next)
	return bs, nil
}

// imapWholeHeader is BODY[HEADER]: the header section as stored (RFC
// 9051 section 6.4.5), through the blank line that separates it from the
// body. A message without header fields has only that line. A message
// that ends inside its header has no blank line, and none is added: the
// RFC includes it "in all header fetches, except in the case of a message
// which has no body and no blank line", and BODY[HEADER] plus BODY[TEXT]
// is then BODY[]. A section cut at imapMaxHeader gets the blank line (in
// the line ends it uses, after the last field's line end when it was cut
// mid-line), as its body follows.
func imapWholeHeader(h []byte) []byte {
	switch {
	case len(h) < imapMaxHeader || imapEndsBlank(h):
		return h
	case bytes.HasSuffix(h, []byte("\r\n")):
		return append(slices.Clip(h), "\r\n"...)
	case bytes.HasSuffix(h, []byte("\n")):
		return append(slices.Clip(h), '\n')
	}
	return append(slices.Clip(h), "\r\n\r\n"...) // the last field's line end, and the blank line
}

// imapEndsBlank reports whether a header section as read by
// readHeaderSection ends in its blank line (its last line is empty but
// for CRs before the LF).
func imapEndsBlank(h []byte) bool {
	if !bytes.HasSuffix(h, []byte("\n")) {
		return false
	}
	rest := h[:len(h)-1]
	return len(bytes.TrimRight(rest[bytes.LastIndexByte(rest, '\n')+1:], "\r")) == 0
}

// imapHeaderEnd drops the blank line imapHeaderFields ends a section
// with when the header had none (blank false): a message that is all
// header (RFC 9051 section 6.4.5).
func imapHeaderEnd(fields []byte, blank bool) []byte {
	if blank {
		return fields
	}
	return bytes.TrimSuffix(fields, []byte("\r\n"))
}

// imapHeaderSection answers BODY[HEADER], BODY[HEADER.FIELDS (...)] and
// BODY[HEADER.FIELDS.NOT (...)] from a parsed header: the raw fields kept,
// in message order, then the blank line, then the <partial> window (RFC
// 9051 section 6.4.5). It gives what go-imap's ExtractBodySection gives,
// without parsing the header again.
func imapHeaderSection(h textproto.Header, bs *imap.FetchItemBodySection) []byte {
	return imapPartial(imapHeaderFields(h, bs), bs.Partial)
}

// imapHeaderFields is imapHeaderSection without the <partial> window. The
// field lists are short, so they are matched without a map or lower-case
// copies.
func imapHeaderFields(h textproto.Header, bs *imap.FetchItemBodySection) []byte {
	listed := func(list []string, k string) bool {
		return slices.ContainsFunc(list, func(f string) bool { return strings.EqualFold(f, k) })
	}
	var buf bytes.Buffer
	for f := h.Fields(); f.Next(); {
		k := f.Key()
		if (len(bs.HeaderFields) > 0 && !listed(bs.HeaderFields, k)) || listed(bs.HeaderFieldsNot, k) {
			continue
		}
		raw, err := f.Raw()
		if err != nil {
			return nil
		}
		buf.Write(raw)
	}
	buf.WriteString("\r\n")
	return buf.Bytes()
}

// imapPartial applies a <partial> window (nil: the whole section).
func imapPartial(out []byte, p *imap.SectionPartial) []byte {
	if p == nil {
		return out
	}
	if p.Offset > int64(len(out)) {
		return nil
	}
	return out[p.Offset:min(p.Offset+p.Size, int64(len(out)))]
}
