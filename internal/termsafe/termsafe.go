// Package termsafe makes text from outside hastack safe to print on a
// terminal or in a CI log: a config value, a node's file or a command's
// output may hold ESC (which starts terminal control sequences), CR (which
// lets a line overwrite what was printed before it), or a Unicode bidi
// override (which reorders what the reader sees). Every one of them is
// shown as a visible escape instead, as Go writes it in a string literal.
package termsafe

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// String returns s with every control character, invalid UTF-8 byte and
// bidi formatting character written as an escape (\x1b, \r, \u202e, ...).
// Printable text, including non-ASCII letters, is left as it is; so are
// backslashes, so a message without control characters is unchanged.
func String(s string) string {
	if isSafe(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafe(r):
			b.WriteString(escape(r))
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// isSafe is the fast path: most text needs no escape at all.
func isSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			return !strings.ContainsFunc(s, unsafe) && utf8.ValidString(s)
		}
	}
	return true
}

// unsafe reports the runes a terminal or a reader could be fooled by: C0
// and C1 controls, DEL, and the Unicode bidi embeddings, overrides and
// isolates, plus the line and paragraph separators.
func unsafe(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	case r == 0x2028, r == 0x2029:
		return true
	}
	return false
}

func escape(r rune) string {
	switch r {
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	}
	if r < 0x100 {
		return fmt.Sprintf(`\x%02x`, r)
	}
	return fmt.Sprintf(`\u%04x`, r)
}
