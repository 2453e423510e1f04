package secret

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testKey = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACBn0nK0JeQ0QSkYhLGw5Q0m5Wm4yMhg2mQHcPSxvS7GtwAAAJgmCHmNJgh5\n-----END OPENSSH PRIVATE KEY-----"

func TestNamedFillMask(t *testing.T) {
	s := New("cluster-pw-1").WithNamed("hostKey", New(testKey)).WithNamed("tokenKey", New("tok-3f9a1c22"))
	in := "a " + NamedPlaceholder("hostKey") + "\nb " + NamedPlaceholder("tokenKey") + " " + Placeholder + " " + NamedPlaceholder("unknown")
	got := string(Fill([]byte(in), s))
	want := "a " + testKey + "\nb tok-3f9a1c22 cluster-pw-1 " + NamedPlaceholder("unknown")
	if got != want {
		t.Fatalf("Fill:\n%s\nwant\n%s", got, want)
	}
	if m := Mask(in); strings.Contains(m, "@@") || strings.Count(m, Shown) != 4 {
		t.Fatalf("Mask left a placeholder: %q", m)
	}
	// Named secrets alone (no password) still fill.
	if got := string(Fill([]byte(NamedPlaceholder("tokenKey")), Secret{}.WithNamed("tokenKey", New("tok-3f9a1c22")))); got != "tok-3f9a1c22" {
		t.Fatalf("Fill without a password: %q", got)
	}
	if s2 := s.WithNamed("tokenKey", New("other-value-9")); func() string { v, _ := s.Named("tokenKey"); return v.Value() }() != "tok-3f9a1c22" || func() string { v, _ := s2.Named("tokenKey"); return v.Value() }() != "other-value-9" {
		t.Fatal("WithNamed changed the Secret it was called on")
	}
	if !s.MultiLine("x"+NamedPlaceholder("hostKey")) || s.MultiLine(NamedPlaceholder("tokenKey")) {
		t.Fatal("MultiLine wrong")
	}
}

// A private key leaks line by line in a diff or a log: every line but the
// armour is hidden, even written one byte at a time.
func TestRedactorHidesKeyLines(t *testing.T) {
	s := Secret{}.WithNamed("hostKey", New(testKey))
	var out bytes.Buffer
	r := NewRedactor(&out)
	r.Add(s)
	text := "-" + strings.ReplaceAll(testKey, "\n", "\n-") + "\n"
	for i := 0; i < len(text); i++ {
		r.Write([]byte{text[i]})
	}
	r.Flush()
	for _, l := range strings.Split(testKey, "\n")[1:3] {
		if strings.Contains(out.String(), l) {
			t.Fatalf("key line shown: %s", out.String())
		}
	}
	if !strings.Contains(out.String(), "BEGIN OPENSSH PRIVATE KEY") {
		t.Fatalf("armour hidden too: %s", out.String())
	}
}

func TestResolveNamed(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key")
	if err := os.WriteFile(p, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Source{File: p}.ResolveNamed("hostKey")
	if err != nil || s.Value() != testKey {
		t.Fatalf("ResolveNamed: %v (%d bytes)", err, len(s.Value()))
	}
	os.Chmod(p, 0o644)
	if _, err := (Source{File: p}).ResolveNamed("hostKey"); err == nil || strings.Contains(err.Error(), "b3Blbn") {
		t.Fatalf("a key open to others: %v", err)
	}
	for _, bad := range []string{"", "has@@two", "ctl\x01x"} {
		t.Setenv("HASTACK_TEST_NAMED", bad)
		_, err := Source{Env: "HASTACK_TEST_NAMED"}.ResolveNamed("tokenKey")
		if err == nil || (bad != "" && strings.Contains(err.Error(), bad)) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	for name, ok := range map[string]bool{"hostKey": true, "token_key-2": true, "": false, "2x": false, "a b": false, "a@@": false} {
		if ValidName(name) != ok {
			t.Errorf("ValidName(%q) != %v", name, ok)
		}
	}
}
