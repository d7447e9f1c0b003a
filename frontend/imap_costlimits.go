package frontend

import (
	"fmt"

	"github.com/emersion/go-imap/v2"
)

// imapSearchBudget counts a SEARCH's keys against IMAPConfig's
// MaxSearchKeys and MaxSearchTextKeys. A SEARCH is matched against every
// message of the folder, so each key is a step per message, and each
// BODY or TEXT key reads the message from its start (imapCandidate.
// textMatch): go-imap's 50 KiB command line holds thousands of keys,
// which would keep a core busy for as long as the folder and its
// messages' sizes make it, after the client has gone too (nothing
// interrupts a command whose client hangs up).
type imapSearchBudget struct {
	keys, text int // left
}

// searchOverLimits reports whether criteria hold more keys than the
// limits allow, as an error for the client (NO [LIMIT], RFC 9051
// section 7.1), or nil. It stops counting as soon as a limit is passed,
// so a tree of any size costs at most the limits' worth of steps.
func (s *imapSession) searchOverLimits(criteria *imap.SearchCriteria) error {
	cfg := s.srv.cfg
	b := imapSearchBudget{keys: cfg.MaxSearchKeys, text: cfg.MaxSearchTextKeys}
	if b.fits(criteria) {
		return nil
	}
	s.log.Info("imap: search refused over its key limits",
		"max_keys", cfg.MaxSearchKeys, "max_text_keys", cfg.MaxSearchTextKeys)
	return imapNo(imap.ResponseCodeLimit, fmt.Sprintf(
		"SEARCH takes at most %d keys, of which at most %d BODY or TEXT", cfg.MaxSearchKeys, cfg.MaxSearchTextKeys))
}

// fits takes cr's keys from the budget and reports whether they fit.
// The keys of one level are counted before any NOT or OR under it is
// entered.
func (b *imapSearchBudget) fits(cr *imap.SearchCriteria) bool {
	keys := len(cr.SeqNum) + len(cr.UID) + len(cr.Flag) + len(cr.NotFlag) +
		len(cr.Header) + len(cr.Body) + len(cr.Text) + len(cr.Not) + len(cr.Or)
	for _, set := range []bool{
		!cr.Since.IsZero(), !cr.Before.IsZero(), !cr.SentSince.IsZero(), !cr.SentBefore.IsZero(),
		cr.Larger > 0, cr.Smaller > 0, cr.ModSeq != nil,
	} {
		if set {
			keys++
		}
	}
	b.keys -= keys
	b.text -= len(cr.Body) + len(cr.Text)
	if b.keys < 0 || b.text < 0 {
		return false
	}
	for i := range cr.Not {
		if !b.fits(&cr.Not[i]) {
			return false
		}
	}
	for i := range cr.Or {
		if !b.fits(&cr.Or[i][0]) || !b.fits(&cr.Or[i][1]) {
			return false
		}
	}
	return true
}

// fetchOverLimit reports whether options name more body sections than
// MaxFetchSections, as an error for the client (NO [LIMIT]), or nil.
// Each BODY[...], BINARY[...] or BINARY.SIZE[...] item may read the
// message from its start, however little it sends (a part that does
// not exist sends nothing): thousands of them in one 50 KiB command line
// would read each message thousands of times.
func (s *imapSession) fetchOverLimit(options *imap.FetchOptions) error {
	limit := s.srv.cfg.MaxFetchSections
	if len(options.BodySection)+len(options.BinarySection)+len(options.BinarySectionSize) <= limit {
		return nil
	}
	s.log.Info("imap: fetch refused over its section limit", "max_sections", limit)
	return imapNo(imap.ResponseCodeLimit, fmt.Sprintf("FETCH takes at most %d body sections", limit))
}
