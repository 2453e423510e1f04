package termsafe

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ünïcödé, a\\b": "plain text, ünïcödé, a\\b",
		"\x1b[2Jcleared":            `\x1b[2Jcleared`,
		"line\r\nforged":            `line\r\nforged`,
		"tab\there\x00\x7f":         `tab\there\x00\x7f`,
		"c1 \u009b31m":              `c1 \x9b31m`,
		"bad \xff\xfe utf8":         `bad \xff\xfe utf8`,
		"bidi \u202eevil\u2066":     `bidi \u202eevil\u2066`,
		"":                          "",
	} {
		if got := String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

// writeAll passes s through a Writer in pieces of n bytes, then flushes.
func writeAll(t *testing.T, s string, n int) string {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out)
	for i := 0; i < len(s); i += n {
		if _, err := w.Write([]byte(s[i:min(i+n, len(s))])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// A node's text through the output stream: every control is escaped but
// newline and tab, and text split anywhere, even inside a rune, comes out
// as it does in one piece.
func TestWriter(t *testing.T) {
	for in, want := range map[string]string{
		"plain\ttext, ünïcödé, a\\b\n":    "plain\ttext, ünïcödé, a\\b\n",
		"-bind 0.0.0.0\x1b[2J\r+forged\n": `-bind 0.0.0.0\x1b[2J\r+forged` + "\n",
		"title \x1b]0;pwned\x07 bell\n":   `title \x1b]0;pwned\x07 bell` + "\n",
		"nul\x00 del\x7f c1 \u009b31m\n":  `nul\x00 del\u007f c1 \u009b31m` + "\n",
		"bidi \u202eevil\u2066 \u2028\n":  `bidi \u202eevil\u2066 \u2028` + "\n",
		"bad \xff utf8, cut \xe2\x82":     `bad \xff utf8, cut \xe2\x82`,
		"":                                "",
	} {
		for _, n := range []int{1, 2, 3, len(in) + 1} {
			if got := writeAll(t, in, n); got != want {
				t.Errorf("%q in writes of %d bytes: %q, want %q", in, n, got, want)
			}
		}
	}
}

// JSON through the stream stays valid and decodes to the same text, and
// no raw control reaches the terminal.
func TestWriterKeepsJSON(t *testing.T) {
	v := map[string]string{"diff": "-a\x1b[31m\r\n+b\x7f\u0085\u009b\u202e\u2069\u200f end"}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out := writeAll(t, string(b)+"\n", 5)
	var back map[string]string
	if err := json.Unmarshal([]byte(out), &back); err != nil {
		t.Fatalf("not JSON after the stream: %v\n%s", err, out)
	}
	if back["diff"] != v["diff"] {
		t.Errorf("decoded %q, want %q", back["diff"], v["diff"])
	}
	if s := String(strings.ReplaceAll(strings.ReplaceAll(out, "\n", ""), "\t", "")); s != strings.ReplaceAll(strings.ReplaceAll(out, "\n", ""), "\t", "") {
		t.Errorf("raw control characters left in %q", out)
	}
}
