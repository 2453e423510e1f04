// Package termsafe makes text from outside hastack safe to print on a
// terminal or in a CI log: a config value, a node's file or a command's
// output may hold ESC (which starts terminal control sequences), CR (which
// lets a line overwrite what was printed before it), or a Unicode bidi
// override (which reorders what the reader sees). Every one of them is
// shown as a visible escape instead, as Go writes it in a string literal.
package termsafe

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
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

// Writer is an output stream that escapes what String escapes, except
// newline and tab, which a stream of lines needs. Control characters that
// no JSON encoder leaves raw (C0) are written as String writes them
// (\x1b, \r); DEL, C1 controls and bidi characters as \u007f, \u009b,
// \u202e: the form a JSON string reads as the same character, so JSON
// passed through the Writer stays valid and means the same. A UTF-8
// sequence split across two writes is kept whole: the start of one is held
// back until the next write, or Flush.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	pending []byte // an incomplete UTF-8 sequence that ended the last write
}

// NewWriter wraps w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write escapes p and writes it on; it reports all of p as written unless
// the underlying writer fails.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := p
	if len(w.pending) > 0 {
		b = append(w.pending, p...)
		w.pending = nil
	}
	if n := incompleteTail(b); n > 0 {
		w.pending = append([]byte(nil), b[len(b)-n:]...)
		b = b[:len(b)-n]
	}
	if _, err := w.w.Write(escapeStream(b)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes out a held-back partial sequence, escaped byte by byte: no
// more bytes will complete it.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return nil
	}
	b := escapeStream(w.pending)
	w.pending = nil
	_, err := w.w.Write(b)
	return err
}

// incompleteTail is the length of the start of a UTF-8 sequence that ends
// b and needs more bytes (0 when b ends with a whole rune or an invalid
// byte).
func incompleteTail(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		switch c := b[i]; {
		case c < 0x80:
			return 0
		case c >= 0xc0: // a leading byte
			if utf8.FullRune(b[i:]) {
				return 0
			}
			return len(b) - i
		}
	}
	return 0
}

// escapeStream is String for a stream: newline and tab stay, and runes
// above the C0 range take the JSON-readable \u form.
func escapeStream(b []byte) []byte {
	if streamSafe(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = fmt.Appendf(out, `\x%02x`, b[i])
		case r == '\n' || r == '\t':
			out = append(out, b[i])
		case r < 0x20:
			out = append(out, escape(r)...)
		case unsafe(r):
			out = fmt.Appendf(out, `\u%04x`, r)
		default:
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

// streamSafe is escapeStream's fast path: plain ASCII text with newlines
// and tabs, or valid UTF-8 with nothing unsafe in it.
func streamSafe(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\n' && c != '\t') || c >= 0x7f {
			return utf8.Valid(b) && !bytes.ContainsFunc(b, func(r rune) bool {
				return unsafe(r) && r != '\n' && r != '\t'
			})
		}
	}
	return true
}
