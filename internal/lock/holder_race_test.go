package lock

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"hastack.dev/hastack/internal/host"
)

// A run that holds the local lock takes it before it writes its details:
// a run refused in between looks again, and names the holder once they are
// written (TestLock/race in e2e saw "an unknown run" from this window).
func TestLocalLockHolderNotWrittenYet(t *testing.T) {
	p := filepath.Join(t.TempDir(), "locks", "c")
	l, err := TryLocal(p, holder(t, "hastack apply"))
	if err != nil {
		t.Fatal(err)
	}
	l.f.Truncate(0) // as in the window between the holder's flock and its write
	h := holder(t, "hastack plan -out")
	waits := 0
	defer func(w func()) { holderWait = w }(holderWait)
	holderWait = func() {
		if waits++; waits == 1 {
			l.f.WriteAt([]byte(h.encode()), 0)
		}
	}
	_, err = TryLocal(p, holder(t, "hastack apply"))
	heldBy(t, err, h)
	if waits != 1 {
		t.Errorf("looked %d times, want once", waits)
	}

	// A holder that lets go while we look: the lock is ours.
	l.f.Truncate(0)
	holderWait = func() { l.Release() }
	mine := holder(t, "hastack apply")
	l2, err := TryLocal(p, mine)
	if err != nil {
		t.Fatalf("the lock was let go, yet: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != mine.encode() {
		t.Errorf("holder file %q", b)
	}

	// A holder that never writes is named an unknown run, after a bounded
	// number of looks.
	l2.f.Truncate(0)
	waits = 0
	holderWait = func() { waits++ }
	_, err = TryLocal(p, holder(t, "hastack apply"))
	var he *HeldError
	if !errors.As(err, &he) || !strings.Contains(err.Error(), "an unknown run") || waits != holderTries {
		t.Errorf("got %v after %d looks, want an unknown run after %d", err, waits, holderTries)
	}
	l2.Release()
}

// fakeFlock puts a flock(1) first in PATH that answers "busy" (exit 75)
// with no holder file on its first call, as when the holder has just
// taken the lock; on its second call it runs second (sh).
func fakeFlock(t *testing.T, second string) (calls func() int) {
	real, err := exec.LookPath("flock")
	if err != nil {
		t.Skip("no flock(1) here")
	}
	bin := t.TempDir()
	count := filepath.Join(bin, "count")
	script := `#!/bin/sh
n=$(cat "$FAKE_FLOCK_COUNT" 2>/dev/null || echo 0); n=$((n+1)); echo $n >"$FAKE_FLOCK_COUNT"
[ "$n" = 1 ] && exit 75
` + second + "\n"
	if err := os.WriteFile(filepath.Join(bin, "flock"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAKE_FLOCK_COUNT", count)
	t.Setenv("REAL_FLOCK", real)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	return func() int {
		b, _ := os.ReadFile(count)
		n := 0
		for _, c := range strings.TrimSpace(string(b)) {
			n = n*10 + int(c-'0')
		}
		return n
	}
}

// The node lock: a refusal that finds no holder file yet looks again and
// names the holder once it has written it; a lock let go meanwhile is
// taken.
func TestNodeLockHolderNotWrittenYet(t *testing.T) {
	ctx := context.Background()
	t.Run("named", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "hastack")
		h := holder(t, "hastack plan -out")
		t.Setenv("HOLDER_TEXT", h.encode())
		calls := fakeFlock(t, `printf '%s' "$HOLDER_TEXT" >"$4.holder"; exit 75`)
		_, err := TryNode(ctx, host.Local("node1"), dir, holder(t, "hastack apply"))
		heldBy(t, err, h)
		if n := calls(); n != 2 {
			t.Errorf("flock ran %d times, want 2", n)
		}
	})
	t.Run("let go meanwhile", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "hastack")
		calls := fakeFlock(t, `exec "$REAL_FLOCK" "$@"`)
		l, err := TryNode(ctx, host.Local("node1"), dir, holder(t, "hastack apply"))
		if err != nil {
			t.Fatalf("the lock was let go, yet: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "lock.holder")); err != nil {
			t.Errorf("no holder file: %v", err)
		}
		l.Release()
		if n := calls(); n != 2 {
			t.Errorf("flock ran %d times, want 2", n)
		}
	})
}

// The local lock is still a lock: a second process on the file is
// refused by the kernel while the first holds it (a sanity check that the
// looks again do not take a held lock).
func TestLocalLockStillExclusive(t *testing.T) {
	p := filepath.Join(t.TempDir(), "locks", "c")
	h := holder(t, "hastack apply")
	l, err := TryLocal(p, h)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("flock on a held lock: %v", err)
	}
	_, err = TryLocal(p, holder(t, "hastack apply"))
	heldBy(t, err, h)
}
