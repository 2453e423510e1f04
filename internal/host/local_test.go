package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestLocalRun(t *testing.T) {
	h := Local("here")
	res, err := h.Run(context.Background(), "cat; echo oops >&2; exit 3", strings.NewReader("in\n"))
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "in\n" || string(res.Stderr) != "oops\n" || res.Code != 3 {
		t.Fatalf("got %+v", res)
	}
}

func TestLocalRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Local("here").Run(ctx, "true", nil); err == nil || !strings.Contains(err.Error(), "here") {
		t.Fatalf("want an error naming the node, got %v", err)
	}
}

func TestLocalWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.conf")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := Local("here")
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		uid, gid = 4242, 4343
	}
	if err := h.WriteFile(context.Background(), File{Path: p, Data: []byte("new"), Mode: 0o640, UID: uid, GID: gid}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "new" {
		t.Fatalf("content %q, %v", b, err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", st.Mode())
	}
	if uid >= 0 {
		sys := st.Sys().(*syscall.Stat_t)
		if int(sys.Uid) != uid || int(sys.Gid) != gid {
			t.Fatalf("owner %d:%d", sys.Uid, sys.Gid)
		}
	}
	assertOnlyFile(t, dir, "a.conf")
}

func TestLocalWriteFileMissingDir(t *testing.T) {
	dir := t.TempDir()
	err := Local("here").WriteFile(context.Background(), File{Path: filepath.Join(dir, "nope", "x"), Data: []byte("secret-data"), Mode: 0o600, UID: -1, GID: -1})
	if err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	if strings.Contains(err.Error(), "secret-data") {
		t.Fatalf("error leaks the content: %v", err)
	}
	assertOnlyFile(t, dir)
}

func assertOnlyFile(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("directory holds %v, want %v", got, names)
	}
}
