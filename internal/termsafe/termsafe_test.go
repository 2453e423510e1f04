package termsafe

import "testing"

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
