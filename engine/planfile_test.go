package engine

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"hastack.dev/hastack/internal/lock"
)

// plan -out over an existing file: the plan is 0600 whatever that file's
// mode was (issue 8, finding 8), a symlink there is replaced rather than
// followed, no temporary file is left, and the lock holder is kept.
func TestPlanFileSaveMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tfplan")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := lock.Holder{Who: "alice@ctl", Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), RunID: "0123abcd", PID: 42, Command: "hastack plan -out"}
	pf := &PlanFile{FormatVersion: FormatVersion, FingerprintSalt: "00", Lock: &h}
	if err := pf.Save(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("the saved plan is %04o, want 0600", st.Mode().Perm())
	}
	back, ok, err := ReadPlanFile(path)
	if err != nil || !ok {
		t.Fatalf("read back: %v %v", ok, err)
	}
	if back.Lock == nil || *back.Lock != h {
		t.Fatalf("the lock holder was not kept: %+v", back.Lock)
	}

	// A symlink at the path: replaced, the file it points to untouched.
	target := filepath.Join(t.TempDir(), "elsewhere")
	os.WriteFile(target, []byte("keep\n"), 0o644)
	link := filepath.Join(dir, "linked")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := pf.Save(link); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep\n" {
		t.Fatal("Save wrote through a symlink")
	}
	if st, err := os.Lstat(link); err != nil || st.Mode().Type() != 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("the link was not replaced by a 0600 file: %v %v", st.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("files left in the folder: %v", entries)
	}
}
