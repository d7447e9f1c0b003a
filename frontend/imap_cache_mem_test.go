package frontend

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// cacheTestHeaders are a short header (as the Jepsen workload sends) and
// a longer one of the kind that has passed through several relays.
func cacheTestHeaders() map[string]string {
	var long strings.Builder
	long.WriteString("Return-Path: <a@b.test>\r\n")
	for i := range 6 {
		fmt.Fprintf(&long, "Received: from mx%d.example.net (mx%d.example.net [192.0.2.%d])\r\n\tby mx.example.com with ESMTPS id 4Abc%dXyz\r\n\tfor <user@example.com>; Mon, 30 Nov 2026 08:00:0%d +0000\r\n", i, i, i, i, i)
	}
	long.WriteString("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.net; s=sel;\r\n\th=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\tb=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgaXMgbG9uZyBlbm91Z2g=\r\n")
	long.WriteString("From: Someone <someone@example.net>\r\nTo: user@example.com\r\nSubject: A longer subject line\r\nDate: Mon, 30 Nov 2026 08:00:00 +0000\r\nMessage-ID: <abc.def@example.net>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n")
	return map[string]string{
		"short": "Return-Path: <a@b.test>\r\nReceived: from x (x [127.0.0.1]) by n1.test with ESMTP id ABCDEF; Mon, 30 Nov 2026 08:00:00 +0000\r\nFrom: a@b.test\r\nTo: box1@x.test\r\nSubject: message 12345\r\nMessage-ID: <12345@x.test>\r\n\r\n",
		"long":  long.String(),
	}
}

// TestIMAPMetaCostCoversItsMemory: an entry's cost, which the cache bound
// counts, is at least the heap it takes once its header has been parsed,
// a header section filtered and a field searched, as FETCH ENVELOPE and
// SEARCH SUBJECT do. (A cost of four times the raw header once let a
// 64 MiB cache hold 140 MB of parsed short headers in a soak.) It
// calibrates metaCost against go-message's parsed header and Go's maps:
// if it fails after upgrading either, measure again and adjust metaCost.
func TestIMAPMetaCostCoversItsMemory(t *testing.T) {
	const n = 5000
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"From", "Subject", "Date"}}
	for name, hdr := range cacheTestHeaders() {
		heap, c := cacheHeapPerEntry(n, func(c *imapMetaCache, i int) {
			m := &imapMeta{header: []byte(hdr)}
			c.put(fmt.Sprint(i), m)
			m.headerSection(section)
			m.loweredValues("Subject")
		})
		cost := float64(c.used) / n
		t.Logf("%s header, %d bytes: %.0f heap bytes per entry, cost %.0f", name, len(hdr), heap, cost)
		if cost < heap {
			t.Errorf("%s header: cost %.0f per entry is below its %.0f heap bytes", name, cost, heap)
		}
		if cost > 2*heap {
			t.Errorf("%s header: cost %.0f per entry is over twice its %.0f heap bytes: the cache holds too little", name, cost, heap)
		}
	}
}

// TestIMAPMetaCostCoversItsStructure: an entry's cost covers the heap
// its BODYSTRUCTURE takes. It was counted as 1 KiB whatever its size,
// and the structure of a message of imapMaxMIMEParts empty parts keeps
// about 2 MiB: a 64 MiB cache of such entries could hold tens of GB.
func TestIMAPMetaCostCoversItsStructure(t *testing.T) {
	var many strings.Builder
	many.WriteString("Content-Type: multipart/mixed; boundary=b\r\n\r\n")
	for range imapMaxMIMEParts {
		many.WriteString("--b\r\nContent-Type: text/plain; charset=utf-8; name=a.txt\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nx\r\n")
	}
	many.WriteString("--b--\r\n")
	msgs := map[string]struct {
		msg string
		n   int
	}{
		"many parts": {many.String(), 4},
		"mixed":      {imapMixedTestMsg, 2000},
	}
	for name, tc := range msgs {
		heap, c := cacheHeapPerEntry(tc.n, func(c *imapMetaCache, i int) {
			c.put(fmt.Sprint(i), &imapMeta{bstruct: imapBodyStructure(strings.NewReader(tc.msg))})
		})
		cost := float64(c.used) / float64(tc.n)
		t.Logf("%s: %.0f heap bytes per structure, cost %.0f", name, heap, cost)
		if cost < heap {
			t.Errorf("%s: cost %.0f per entry is below its structure's %.0f heap bytes", name, cost, heap)
		}
		if cost > 3*heap {
			t.Errorf("%s: cost %.0f per entry is over three times its structure's %.0f heap bytes", name, cost, heap)
		}
	}
}

// cacheHeapPerEntry fills a fresh cache with n entries by fill and
// returns the heap they take per entry, and the cache. Memory that other
// tests' goroutines let go of during a window can only lower its delta,
// so the largest of three windows is the truest measure.
func cacheHeapPerEntry(n int, fill func(c *imapMetaCache, i int)) (float64, *imapMetaCache) {
	var heap float64
	var c *imapMetaCache
	for range 3 {
		c = newIMAPMetaCache(1 << 40)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range n {
			fill(c, i)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = max(heap, (float64(after.HeapAlloc)-float64(before.HeapAlloc))/float64(n))
		runtime.KeepAlive(c)
	}
	return heap, c
}

const imapMixedTestMsg = "From: a@example.org\r\nSubject: mixed\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n" +
	"--B\r\nContent-Type: multipart/alternative; boundary=\"A\"\r\n\r\n" +
	"--A\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nhello\r\n" +
	"--A\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>hello</p>\r\n--A--\r\n" +
	"--B\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n" +
	"--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@example.org\r\nTo: c@example.org\r\nSubject: inner\r\nMessage-ID: <x@example.org>\r\n\r\ninner body\r\n--B--\r\n"
