package fsm

import (
	"sort"
	"strings"
	"unicode/utf8"
)

// foldCase is the case folding of domains and local parts in keys (a
// domain is checked for LDH characters only after it): each rune is
// lowered by foldTable, a table pinned in the repository (foldtable.go),
// not by the toolchain's unicode package, so that nodes built with Go
// releases of different Unicode versions compute the same key for one
// address. It gives exactly what strings.ToLower gave with the table's
// Unicode version, including U+FFFD for each byte that is no UTF-8, so
// keys stored before the table existed keep their meaning.
func foldCase(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s) // ASCII lowering consults no Unicode table
	}
	return strings.Map(foldRune, s)
}

// foldRune lowers one rune by the pinned table.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}
	i := sort.Search(len(foldTable), func(i int) bool { return foldTable[i][0] >= r })
	if i < len(foldTable) && foldTable[i][0] == r {
		return foldTable[i][1]
	}
	return r
}
