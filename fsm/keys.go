package fsm

// Key layout (all keys are byte strings; "\x00" separates components,
// which never contain NUL):
//
//	"\x00applied"                      applied raft index, 8 bytes big endian
//	"\x00settings"                     Settings
//	"\x00placement-mark"               raft index, 8 bytes big endian (placement.go)
//	"\x00uid-validity"                 last UIDVALIDITY given out, 8 bytes big endian (uidvalidity.go)
//	"d\x00" domain                     Domain
//	"u\x00" domain "\x00" local        Mailbox  (local folded to lower case)
//	"p\x00" domain "\x00" local        password hash of a Mailbox (raw string)
//	"b\x00" domain "\x00" local "\x00" folder   Folder
//	"f\x00" domain "\x00" local        Forward  (local "" for a catch-all)
//	"n\x00" id                         Member
//	"t\x00" domain "\x00" local "\x00" sdomain "\x00" slocal   forward target index, from encoding 11 (forwardindex.go)
//	"h\x00" domain "\x00" local "\x00" remover   a removal's hold on a mailbox's mark, from encoding 12 (removalholds.go)
//
// Domain-first keys make "every mailbox of a domain" a prefix scan.
var (
	keyApplied       = []byte("\x00applied")
	keySettings      = []byte("\x00settings")
	keyPlacementMark = []byte("\x00placement-mark")
	keyValidity      = []byte("\x00uid-validity")
)

func domainKey(d string) []byte { return []byte("d\x00" + d) }

func addrPart(a Address) string { return a.Domain + "\x00" + foldCase(a.Local) }

func mailboxKey(a Address) []byte        { return []byte("u\x00" + addrPart(a)) }
func mailboxPrefix(domain string) []byte { return []byte("u\x00" + domain + "\x00") }
func passwordKey(a Address) []byte       { return []byte("p\x00" + addrPart(a)) }
func forwardKey(a Address) []byte        { return []byte("f\x00" + addrPart(a)) }
func forwardPrefix(domain string) []byte { return []byte("f\x00" + domain + "\x00") }
func allForwardsPrefix() []byte          { return []byte("f\x00") }
func folderKey(a Address, name string) []byte {
	return []byte("b\x00" + addrPart(a) + "\x00" + name)
}
func folderPrefix(a Address) []byte { return []byte("b\x00" + addrPart(a) + "\x00") }
func memberKey(id string) []byte {
	return []byte(memberPrefix + id)
}

// memberPrefix starts every member key.
const memberPrefix = "n\x00"

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
