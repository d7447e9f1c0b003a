package frontend

import (
	"github.com/emersion/go-message/textproto"
	"maps"
	"testing"

	gomessage "github.com/emersion/go-message"
)

// What imapContentType makes of Content-Type fields Go's parser refuses,
// and that it leaves well-formed ones and unreadable types as they were.
func TestIMAPContentTypeLenient(t *testing.T) {
	for _, tc := range []struct {
		field  string
		typ    string
		params map[string]string
		err    bool
	}{
		{`text/plain; charset="utf-8"`, "text/plain", map[string]string{"charset": "utf-8"}, false},
		{`multipart/mixed; boundary=----=_Part_0_1.2`, "multipart/mixed", map[string]string{"boundary": "----=_Part_0_1.2"}, false},
		{`application/pdf; name=Scan 2024.pdf`, "application/pdf", map[string]string{"name": "Scan 2024.pdf"}, false},
		{`multipart/mixed;; boundary="b;1"; junk; x=`, "multipart/mixed", map[string]string{"boundary": "b;1", "x": ""}, false},
		{`multipart/related; type="text/html"; boundary="b1"; start=<x@y>`, "multipart/related",
			map[string]string{"type": "text/html", "boundary": "b1", "start": "<x@y>"}, false},
		{`text/plain; name=Dätei.txt; name=other`, "text/plain", map[string]string{"name": "Dätei.txt"}, false},
		{`application/pdf; name*0*=utf-8''Sc%C3%A4n; name*1="  2.pdf"; bad@name=1; size=a b`, "application/pdf",
			map[string]string{"name": "Scän  2.pdf", "size": "a b"}, false},
		{`application/pdf; name="=?utf-8?q?R=C3=A9sum=C3=A9?= 1.pdf"; x=a b`, "application/pdf",
			map[string]string{"name": "Résumé 1.pdf", "x": "a b"}, false},
		{`text/plain; charset=us-ascii (Plain text)`, "text/plain", map[string]string{"charset": "us-ascii"}, false},
		{`application/pdf; name=Rechnung (1).pdf`, "application/pdf", map[string]string{"name": "Rechnung (1).pdf"}, false},
		{`multipart/mixed; boundary="b1"; boundary="b1"`, "multipart/mixed", map[string]string{"boundary": "b1"}, false},
		{`text/plain; charset=iso-8859-1; CHARSET=utf-8`, "text/plain", map[string]string{"charset": "iso-8859-1"}, false},
		{`application/pdf; name*=iso-8859-1''caf%E9%20%80.pdf`, "application/pdf", map[string]string{"name": "café €.pdf"}, false},
		{`application/pdf; name*=windows-1252'fr'%93x%94.pdf; x=a b`, "application/pdf", map[string]string{"name": "“x”.pdf", "x": "a b"}, false},
		{`application/pdf; name*0*=iso-8859-2''%B1; name*1=b; name*2*=%E6.txt`, "application/pdf", map[string]string{"name": "ąbć.txt"}, false},
		{`application/pdf; name*=koi8-r''%F0%D2.doc; name="fallback.doc"`, "application/pdf", map[string]string{"name": "Пр.doc"}, false},
		{`application/pdf; name*=x-unknown''caf%E9.pdf`, "application/pdf", map[string]string{"name": "café.pdf"}, false},
		{`application/pdf; name*=us-ascii''caf%E9.pdf`, "application/pdf", map[string]string{"name": "café.pdf"}, false},
		{`application/pdf; name*=utf-8''%80uro%20caf%C3%A9.pdf`, "application/pdf", map[string]string{"name": "€uro café.pdf"}, false},
		{`application/pdf; name*=x-unknown''caf%C3%A9.pdf`, "application/pdf", map[string]string{"name": "café.pdf"}, false},
		{`application/pdf; name*0*=iso-8859-1''a; name*2=c`, "application/pdf", map[string]string{}, false},
		{`application/pdf; name*=iso-8859-1''%ZZ`, "application/pdf", map[string]string{}, false},
		{`application/pdf; name*=iso-8859-1''%ZZ; name="fall back.pdf"`, "application/pdf", map[string]string{"name": "fall back.pdf"}, false},
		{`application/pdf; name="=?utf-8?q?R=C3=A9sum=C3=A9?=.doc"; name*0*=koi8-r''%F0; name*2*=%D2`, "application/pdf", map[string]string{"name": "Résumé.doc"}, false},
		{`application/pdf; name*=latin1; name=plain.txt`, "application/pdf", map[string]string{"name": "plain.txt"}, false},
		{`application/pdf; name*0*=iso-8859-1''a%E9; name*+1=b`, "application/pdf", map[string]string{"name": "aé"}, false},
		{`text/"plain"`, `text/"plain"`, nil, true},
		{`text/plain x; charset=utf-8`, `text/plain x; charset=utf-8`, nil, true},
	} {
		h := gomessage.Header{Header: textproto.Header{}}
		h.Set("Content-Type", tc.field)
		typ, params, err := imapContentType(h)
		if typ != tc.typ || !maps.Equal(params, tc.params) || (err != nil) != tc.err {
			t.Errorf("%s: %q %q %v, want %q %q (error %v)", tc.field, typ, params, err, tc.typ, tc.params, tc.err)
		}
	}
}
