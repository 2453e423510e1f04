package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	s := New("hunter2-hunter2")
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s)} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("printed: %q", out)
		}
	}
	b, _ := json.Marshal(struct{ P Secret }{s})
	if strings.Contains(string(b), "hunter2") {
		t.Errorf("JSON: %s", b)
	}
}

func TestRedactorSplitWrites(t *testing.T) {
	var out bytes.Buffer
	r := NewRedactor(&out)
	r.Add(New("hunter2-hunter2"))
	r.Write([]byte("pass=hunt"))
	r.Write([]byte("er2-hunter2 ok\nnext hunter2-hunter2"))
	r.Flush()
	if strings.Contains(out.String(), "hunter2") {
		t.Errorf("leaked: %q", out.String())
	}
	if out.String() != "pass=(sensitive) ok\nnext (sensitive)" {
		t.Errorf("got %q", out.String())
	}
}

func TestResolveErrorsNeverQuote(t *testing.T) {
	for _, v := range []string{"", "sh0rt", "has space inside", "quote'inside1"} {
		t.Setenv("HASTACK_TEST_PW", v)
		_, err := Source{Env: "HASTACK_TEST_PW"}.Resolve()
		if err == nil {
			t.Errorf("%q accepted", v)
			continue
		}
		if v != "" && strings.Contains(err.Error(), v) {
			t.Errorf("error quotes the value: %v", err)
		}
	}
	t.Setenv("HASTACK_TEST_PW", "good-password-1")
	if s, err := (Source{Env: "HASTACK_TEST_PW"}).Resolve(); err != nil || s.Value() != "good-password-1" {
		t.Errorf("Resolve: %v", err)
	}
}

// A password file is read like an SSH private key: only a small regular
// file of the user's or root's, not open to others, never through a
// symlink; /dev/zero, a FIFO or a huge file is refused at once, before any
// read (before the fix /dev/zero filled the memory and a FIFO hung).
func TestResolveFileRefusesHostileFiles(t *testing.T) {
	dir := t.TempDir()
	const pw = "good-password-1"
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	good := write("good", pw+"\n", 0o600)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	others := write("others", pw, 0o600)
	if err := os.Chown(others, 65534, 65534); err != nil {
		t.Fatalf("chown (the test runs as root): %v", err)
	}
	for _, c := range []struct{ path, want string }{
		{"/dev/zero", "is a character device, not a regular file"},
		{fifo, "is a named pipe (FIFO), not a regular file"},
		{link, "is a symlink"},
		{write("huge", strings.Repeat("x", MaxFileBytes+1), 0o600), "bytes"},
		{write("world", pw, 0o644), "mode 0644"},
		{write("groupw", pw, 0o620), "mode 0620"},
		{others, "owned by uid 65534"},
		{filepath.Join(dir, "missing"), "no such file"},
	} {
		_, err := Source{File: c.path}.Resolve()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want an error saying %q, got %v", c.path, c.want, err)
		}
		if err != nil && strings.Contains(err.Error(), pw) {
			t.Errorf("%s: error quotes the password: %v", c.path, err)
		}
	}
	for _, p := range []string{good, write("shared", pw+"\r\n", 0o640)} {
		if s, err := (Source{File: p}).Resolve(); err != nil || s.Value() != pw {
			t.Errorf("%s: Resolve: %v", p, err)
		}
	}
}
