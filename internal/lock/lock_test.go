package lock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/sshconn"
	"hastack.dev/hastack/internal/sshtest"
)

func holder(t *testing.T, cmd string) Holder {
	h := NewHolder(cmd)
	if h.Who == "" || h.RunID == "" || h.PID != os.Getpid() {
		t.Fatalf("NewHolder: %+v", h)
	}
	return h
}

// heldBy fails unless err is a refusal naming h.
func heldBy(t *testing.T, err error, h Holder) *HeldError {
	t.Helper()
	var he *HeldError
	if !errors.As(err, &he) {
		t.Fatalf("want a refusal, got %v", err)
	}
	if he.Holder.RunID != h.RunID || he.Holder.Who != h.Who || he.Holder.PID != h.PID ||
		!he.Holder.Since.Equal(h.Since) || he.Holder.Command != h.Command {
		t.Fatalf("refusal names %+v, want %+v", he.Holder, h)
	}
	for _, want := range []string{h.Who, h.RunID, h.Since.Format(time.RFC3339), h.Command} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	return he
}

// testNodes are the connectors a node lock must work with.
func testNodes(t *testing.T) map[string]func(t *testing.T) host.Host {
	return map[string]func(t *testing.T) host.Host{
		"local": func(t *testing.T) host.Host { return host.Local("node1") },
		"ssh": func(t *testing.T) host.Host {
			s := sshtest.Start(t, sshtest.Options{})
			c, err := sshconn.Dial(context.Background(), sshconn.Target{Name: "node1", Host: s.Host, Port: s.Port},
				sshconn.Config{KnownHosts: []string{s.WriteKnownHosts(t)}, IdentityFiles: []string{s.IdentityFile}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		},
	}
}

// A second run is refused while the first holds the node lock, and is told
// who holds it; once released, the lock can be taken again, and the holder
// file is gone.
func TestNodeLockHeldRefusedReleased(t *testing.T) {
	for name, connect := range testNodes(t) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "hastack")
			ctx := context.Background()
			first, second := holder(t, "hastack apply"), holder(t, "hastack plan -out")
			second.RunID = "other"
			a, b := connect(t), connect(t)
			l, err := TryNode(ctx, a, dir, first)
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(dir)
			if err != nil || st.Mode().Perm() != 0o700 {
				t.Fatalf("lock folder: %v %v", st.Mode(), err)
			}
			if st, err := os.Stat(filepath.Join(dir, "lock.holder")); err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("holder file: %v %v", st, err)
			}
			_, err = TryNode(ctx, b, dir, second)
			he := heldBy(t, err, first)
			if he.Where != "node node1" {
				t.Errorf("Where = %q", he.Where)
			}
			l.Release()
			if _, err := os.Stat(filepath.Join(dir, "lock.holder")); !os.IsNotExist(err) {
				t.Errorf("the holder file outlived the lock: %v", err)
			}
			l2, err := TryNode(ctx, b, dir, second)
			if err != nil {
				t.Fatalf("after release: %v", err)
			}
			l2.Release()
		})
	}
}

// A controller that dies (its connection closes without a release) frees
// the node lock.
func TestNodeLockDroppedConnection(t *testing.T) {
	connect := testNodes(t)["ssh"]
	dir := t.TempDir()
	ctx := context.Background()
	a := connect(t)
	if _, err := TryNode(ctx, a, dir, holder(t, "hastack apply")); err != nil {
		t.Fatal(err)
	}
	a.Close() // no Release: as when the controller is killed
	b := connect(t)
	err := Retry(ctx, time.Now().Add(10*time.Second), func() error {
		l, err := TryNode(ctx, b, dir, holder(t, "hastack apply"))
		l.Release()
		return err
	}, nil)
	if err != nil {
		t.Fatalf("the lock outlived its connection: %v", err)
	}
}

// Values from the holder never become commands, and control characters in
// them never reach the refusal.
func TestNodeLockHostileHolder(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	marker := filepath.Join(t.TempDir(), "pwned")
	h := holder(t, "x'; touch "+marker+"; echo '$(touch "+marker+")`touch "+marker+"`")
	h.Who = "evil\x1b[2J\r\nwho=forged@host"
	h.RunID = "run\"; touch " + marker
	l, err := TryNode(ctx, host.Local("node1"), dir, h)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	_, err = TryNode(ctx, host.Local("node1"), dir, holder(t, "hastack apply"))
	var he *HeldError
	if !errors.As(err, &he) {
		t.Fatalf("want a refusal, got %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a holder value ran as a command")
	}
	if strings.ContainsAny(err.Error(), "\x1b\r\n") || he.Holder.Who == "forged@host" {
		t.Fatalf("control characters or a forged line reached the refusal: %q", err)
	}
	if !strings.Contains(he.Holder.Command, "touch "+marker) || he.Holder.RunID != Clean(h.RunID) {
		t.Fatalf("the holder was not kept as written: %+v", he.Holder)
	}
}

// A lock folder another user could write is refused: root would follow a
// symlink planted there.
func TestNodeLockRefusesForeignFolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a folder owned by another user")
	}
	dir := t.TempDir()
	if err := os.Chown(dir, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	_, err := TryNode(context.Background(), host.Local("node1"), dir, holder(t, "hastack apply"))
	if err == nil || !strings.Contains(err.Error(), "not root's own folder") {
		t.Fatalf("got %v", err)
	}
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(t.TempDir(), link)
	_, err = TryNode(context.Background(), host.Local("node1"), link, holder(t, "hastack apply"))
	if err == nil || !strings.Contains(err.Error(), "not root's own folder") {
		t.Fatalf("symlinked folder: got %v", err)
	}
}

// The local lock: refused while held (naming the holder), 0600 in a 0700
// folder, free again once released.
func TestLocalLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "locks")
	p := LocalPath(dir, "transfer", []string{"10.0.0.2:22", "10.0.0.1:22"})
	if p != LocalPath(dir, "transfer", []string{"10.0.0.1:22", "10.0.0.2:22"}) {
		t.Error("the node order changes the local lock's name")
	}
	if p == LocalPath(dir, "other", []string{"10.0.0.1:22", "10.0.0.2:22"}) {
		t.Error("two clusters share a local lock")
	}
	first := holder(t, "hastack apply")
	l, err := TryLocal(p, first)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v", st.Mode())
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("lock folder mode %v", st.Mode())
	}
	_, err = TryLocal(p, holder(t, "hastack apply"))
	if he := heldBy(t, err, first); !strings.Contains(he.Where, "this machine") {
		t.Errorf("Where = %q", he.Where)
	}
	l.Release()
	l2, err := TryLocal(p, first)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()

	// A folder others may write is refused.
	os.Chmod(dir, 0o777)
	if _, err := TryLocal(p, first); err == nil || !strings.Contains(err.Error(), "writable by other users") {
		t.Fatalf("0777 folder: %v", err)
	}
}

// Retry gives up at the deadline with the refusal, tells the user once
// that it waits, and succeeds once the holder lets go.
func TestRetry(t *testing.T) {
	ctx := context.Background()
	held := &HeldError{Where: "node node1", Holder: Holder{Who: "a@b", RunID: "r"}}
	tries := 0
	err := Retry(ctx, time.Time{}, func() error { tries++; return held }, func(*HeldError) { t.Error("told to wait with no timeout") })
	if err != held || tries != 1 {
		t.Fatalf("no timeout: %v after %d tries", err, tries)
	}

	waits := 0
	tries = 0
	err = Retry(ctx, time.Now().Add(time.Minute), func() error {
		if tries++; tries < 3 {
			return held
		}
		return nil
	}, func(*HeldError) { waits++ })
	if err != nil || tries != 3 || waits != 1 {
		t.Fatalf("got %v after %d tries, told %d times", err, tries, waits)
	}

	tries = 0
	err = Retry(ctx, time.Now().Add(300*time.Millisecond), func() error { tries++; return held }, nil)
	if !errors.As(err, new(*HeldError)) || tries < 2 {
		t.Fatalf("timeout: %v after %d tries", err, tries)
	}

	other := errors.New("connection lost")
	if err := Retry(ctx, time.Now().Add(time.Minute), func() error { return other }, nil); err != other {
		t.Fatalf("a failure that is not a refusal was retried: %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Retry(cctx, time.Now().Add(time.Minute), func() error { return held }, nil); !errors.As(err, new(*HeldError)) || !strings.Contains(err.Error(), "stopped waiting") {
		t.Fatalf("cancelled: %v", err)
	}
}
