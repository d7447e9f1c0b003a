package frontend_test

import (
	"testing"

	"github.com/emersion/go-imap/v2"
)

// Attachment names in RFC 2231's extended form in a charset other than
// UTF-8 (Latin-1, windows-1252, KOI8-R, as older mailers write them)
// were left out by Go's parser: the parts had no name in BODYSTRUCTURE.
func TestIMAPBodyStructureNamesInOtherCharsets(t *testing.T) {
	const user = "names2231@example.com"
	c, addr := soloIMAP(t, user)
	c.Deliver(0, "From: a@example.com\r\n"+
		"Subject: names\r\n"+
		"MIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=b\r\n"+
		"\r\n"+
		"--b\r\n"+
		"Content-Type: application/pdf\r\n"+
		"Content-Disposition: attachment; filename*=iso-8859-1''Caf%E9.pdf\r\n"+
		"\r\n"+
		"pdf\r\n"+
		"--b\r\n"+
		"Content-Type: application/msword;\r\n"+
		" name*0*=koi8-r''%F0%D2%C9;\r\n"+
		" name*1*=%D7%C5%D4.doc\r\n"+
		"\r\n"+
		"doc\r\n"+
		"--b--\r\n", user)
	mp := firstBodyStructure(t, addr, user, 2)
	for i, want := range []string{"Café.pdf", "Привет.doc"} {
		if got := mp.Children[i].(*imap.BodyStructureSinglePart).Filename(); got != want {
			t.Errorf("part %d: name %q, want %q", i+1, got, want)
		}
	}
}
