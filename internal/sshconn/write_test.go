package sshconn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/sshtest"
)

const opensshSFTPServer = "/usr/lib/openssh/sftp-server"

// sftpModes are the two ways of reaching SFTP: the sftp-server binary started
// by us (needs it installed on this machine, as sshtest runs exec locally),
// and sshtest's pkg/sftp subsystem (no fsync@openssh.com).
func sftpModes(t *testing.T) map[string]string {
	m := map[string]string{"subsystem": SFTPSubsystem}
	if _, err := os.Stat(opensshSFTPServer); err == nil {
		m["sftp-server"] = ""
	} else {
		t.Logf("%s missing (Debian package openssh-sftp-server): only the subsystem mode is tested", opensshSFTPServer)
	}
	return m
}

func assertDir(t *testing.T, dir string, names ...string) {
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
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}

func TestWriteFile(t *testing.T) {
	eachSFTP(t, func(t *testing.T, c *Conn) {
		dir := t.TempDir()
		p := filepath.Join(dir, "redis.conf")
		writeFile(t, p, "old content\n")
		uid, gid := -1, -1
		if os.Geteuid() == 0 {
			uid, gid = 4242, -1 // gid -1 keeps the group
		}
		for i, data := range []string{"first\n", "second, longer than the first\n"} {
			f := host.File{Path: p, Data: []byte(data), Mode: 0o640, UID: uid, GID: gid}
			if err := c.WriteFile(context.Background(), f); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			b, _ := os.ReadFile(p)
			if string(b) != data {
				t.Fatalf("write %d: content %q", i, b)
			}
		}
		st, _ := os.Stat(p)
		if st.Mode().Perm() != 0o640 {
			t.Errorf("mode %v", st.Mode())
		}
		if uid >= 0 {
			sys := st.Sys().(*syscall.Stat_t)
			if sys.Uid != 4242 || int(sys.Gid) != os.Getegid() {
				t.Errorf("owner %d:%d", sys.Uid, sys.Gid)
			}
		}
		assertDir(t, dir, "redis.conf")
	})
}

func TestWriteFileMissingDir(t *testing.T) {
	eachSFTP(t, func(t *testing.T, c *Conn) {
		dir := t.TempDir()
		err := c.WriteFile(context.Background(), host.File{Path: filepath.Join(dir, "missing", "f"), Data: []byte("s3cr3t-value"), Mode: 0o600, UID: -1, GID: -1})
		if err == nil {
			t.Fatal("write into a missing directory succeeded")
		}
		if !strings.Contains(err.Error(), "node1") || strings.Contains(err.Error(), "s3cr3t") {
			t.Fatalf("error must name the node and not the content: %v", err)
		}
		assertDir(t, dir)
		// The SFTP session survives the failure.
		if err := c.WriteFile(context.Background(), host.File{Path: filepath.Join(dir, "f"), Data: []byte("x"), Mode: 0o600, UID: -1, GID: -1}); err != nil {
			t.Fatal(err)
		}
	})
}

// A failure after the temp file exists (here: the rename, because the target
// is a directory) must remove the temp file and leave the target untouched.
func TestWriteFileFailureLeavesNoTemp(t *testing.T) {
	eachSFTP(t, func(t *testing.T, c *Conn) {
		dir := t.TempDir()
		p := filepath.Join(dir, "target")
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(p, "inside"), "keep")
		err := c.WriteFile(context.Background(), host.File{Path: p, Data: []byte("new"), Mode: 0o600, UID: -1, GID: -1})
		if err == nil || !strings.Contains(err.Error(), "rename") {
			t.Fatalf("want a rename error, got %v", err)
		}
		assertDir(t, dir, "target")
		assertDir(t, p, "inside")
	})
}

// The sftp-server we start runs with umask 077, so a temp file is never
// readable by others, not even before its chmod.
func TestSFTPServerUmask(t *testing.T) {
	if _, err := os.Stat(opensshSFTPServer); err != nil {
		t.Skipf("%s missing (Debian package openssh-sftp-server)", opensshSFTPServer)
	}
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "sftp-server")
	writeFile(t, wrapper, "#!/bin/sh\numask > "+filepath.Join(dir, "umask")+"\nexec "+opensshSFTPServer+"\n")
	os.Chmod(wrapper, 0o755)
	_, tg, cfg := setup(t, sshtest.Options{})
	cfg.SFTPServer = wrapper
	c := dial(t, tg, cfg)
	if err := c.WriteFile(context.Background(), host.File{Path: filepath.Join(dir, "f"), Data: []byte("x"), Mode: 0o644, UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "umask"))
	if strings.TrimSpace(string(b)) != "0077" {
		t.Fatalf("sftp-server umask %q, want 0077", b)
	}
}

// lateCancel is a context cancelled right after WriteFile checked it: its
// Done channel is closed but the first Err() call still says "fine".
type lateCancel struct {
	context.Context
	checked bool
}

func (l *lateCancel) Err() error {
	if !l.checked {
		l.checked = true
		return nil
	}
	return context.Canceled
}

func (l *lateCancel) Done() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

func (l *lateCancel) Deadline() (time.Time, bool) { return time.Time{}, false }

func TestWriteFileFinishesAfterCancel(t *testing.T) {
	eachSFTP(t, func(t *testing.T, c *Conn) {
		dir := t.TempDir()
		p := filepath.Join(dir, "f")
		data := strings.Repeat("0123456789", 100_000) // several SFTP packets
		if err := c.WriteFile(&lateCancel{Context: context.Background()}, host.File{Path: p, Data: []byte(data), Mode: 0o600, UID: -1, GID: -1}); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != data {
			t.Fatalf("content has %d bytes, want %d", len(b), len(data))
		}
		assertDir(t, dir, "f")
	})
}

func TestWriteFileCancelledBeforeStart(t *testing.T) {
	_, tg, cfg := setup(t, sshtest.Options{})
	c := dial(t, tg, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	if err := c.WriteFile(ctx, host.File{Path: filepath.Join(dir, "f"), Data: []byte("x"), Mode: 0o600, UID: -1, GID: -1}); err == nil {
		t.Fatal("a write with a cancelled ctx started")
	}
	assertDir(t, dir)
}

// eachSFTP runs f with a connection for each SFTP mode the machine has.
func eachSFTP(t *testing.T, f func(t *testing.T, c *Conn)) {
	for mode, server := range sftpModes(t) {
		t.Run(mode, func(t *testing.T) {
			_, tg, cfg := setup(t, sshtest.Options{})
			cfg.SFTPServer = server
			f(t, dial(t, tg, cfg))
		})
	}
}
