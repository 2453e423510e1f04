package sshconn

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/crypto/ssh/knownhosts"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/sshtest"
)

// These tests run against a real OpenSSH sshd; they skip (saying why) unless
// run as root with openssh-server installed, as in CI.

func realSSHD(t testing.TB) (*sshtest.OpenSSH, Target, Config) {
	o := sshtest.StartOpenSSH(t)
	tg := Target{Name: "real", Host: o.Host, Port: o.Port, User: "root"}
	cfg := Config{KnownHosts: []string{o.WriteKnownHosts(t)}, IdentityFiles: []string{o.IdentityFile}}
	return o, tg, cfg
}

func TestOpenSSHRunAndWrite(t *testing.T) {
	_, tg, cfg := realSSHD(t)
	c := dial(t, tg, cfg)
	ctx := context.Background()
	res, err := c.Run(ctx, "id -u; cat; echo err >&2; exit 4", strings.NewReader("from stdin\n"))
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "0\nfrom stdin\n" || string(res.Stderr) != "err\n" || res.Code != 4 {
		t.Fatalf("got out=%q err=%q code=%d", res.Stdout, res.Stderr, res.Code)
	}

	dir := t.TempDir()
	p := filepath.Join(dir, "sentinel_41415.conf")
	if err := c.WriteFile(ctx, host.File{Path: p, Data: []byte("port 41415\n"), Mode: 0o640, UID: 4242, GID: 4343}); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"fsync@openssh.com", "posix-rename@openssh.com"} {
		if _, ok := c.sftp.HasExtension(ext); !ok {
			t.Errorf("OpenSSH's sftp-server does not offer %s", ext)
		}
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != 0o640 || sys.Uid != 4242 || sys.Gid != 4343 {
		t.Errorf("mode %v owner %d:%d", st.Mode(), sys.Uid, sys.Gid)
	}
	if b, _ := os.ReadFile(p); string(b) != "port 41415\n" {
		t.Errorf("content %q", b)
	}
	assertDir(t, dir, "sentinel_41415.conf")
}

// With the SFTP session open (it takes one of OpenSSH's 10 sessions), 50
// concurrent commands must all get a session.
func TestOpenSSHConcurrentSessions(t *testing.T) {
	_, tg, cfg := realSSHD(t)
	c := dial(t, tg, cfg)
	if err := c.WriteFile(context.Background(), host.File{Path: filepath.Join(t.TempDir(), "f"), Data: []byte("x"), Mode: 0o600, UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Run(context.Background(), fmt.Sprintf("echo %d", i), nil)
			if err == nil && string(res.Stdout) != fmt.Sprintf("%d\n", i) {
				err = fmt.Errorf("run %d: out %q err %q", i, res.Stdout, res.Stderr)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestOpenSSHHostKeyChecking(t *testing.T) {
	o, tg, cfg := realSSHD(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	cfg.KnownHosts = []string{kh}
	if he := hostKeyErr(t, dialErr(tg, cfg)); !he.Unknown {
		t.Fatalf("got %v", he)
	}
	cfg.AcceptNew = true
	if err := dialErr(tg, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.AcceptNew = false
	if err := dialErr(tg, cfg); err != nil {
		t.Fatalf("dial after accept-new: %v", err)
	}
	// The same address with another key: refused even with AcceptNew.
	other := sshtest.NewSigner(t).PublicKey()
	writeFile(t, kh, knownhosts.Line([]string{o.Addr}, other)+"\n")
	cfg.AcceptNew = true
	if he := hostKeyErr(t, dialErr(tg, cfg)); he.Unknown {
		t.Fatalf("a changed key was taken for a new one: %v", he)
	}
}

// With Sudo, commands and the sftp-server run under "sudo -n" (root may sudo
// without a password, so this needs only the sudo binary).
func TestOpenSSHSudo(t *testing.T) {
	if _, err := exec.LookPath("sudo"); err != nil {
		t.Skip("needs sudo (Debian package sudo)")
	}
	_, tg, cfg := realSSHD(t)
	tg.Sudo = true
	c := dial(t, tg, cfg)
	res, err := c.Run(context.Background(), "echo \"$SUDO_USER\"", nil)
	if err != nil || strings.TrimSpace(string(res.Stdout)) != "root" {
		t.Fatalf("not run by sudo: %q %q %v", res.Stdout, res.Stderr, err)
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := c.WriteFile(context.Background(), host.File{Path: p, Data: []byte("x"), Mode: 0o600, UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
}

// benchTarget is a real sshd when root, else the in-process server.
func benchTarget(b *testing.B) (Target, Config) {
	if os.Geteuid() == 0 {
		if _, err := os.Stat(sshtest.SSHD); err == nil {
			_, tg, cfg := realSSHD(b)
			return tg, cfg
		}
	}
	b.Log("not root or no sshd: measuring the in-process sshtest server")
	s := sshtest.Start(b, sshtest.Options{})
	tg := Target{Name: "bench", Host: s.Host, Port: s.Port, User: "root"}
	return tg, Config{KnownHosts: []string{s.WriteKnownHosts(b)}, IdentityFiles: []string{s.IdentityFile}}
}

// BenchmarkDialClose is the handshake alone (key exchange, host key check,
// authentication).
func BenchmarkDialClose(b *testing.B) {
	tg, cfg := benchTarget(b)
	for b.Loop() {
		c, err := Dial(context.Background(), tg, cfg)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkRun is one command on an open connection.
func BenchmarkRun(b *testing.B) {
	tg, cfg := benchTarget(b)
	c, err := Dial(context.Background(), tg, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for b.Loop() {
		if _, err := c.Run(context.Background(), "true", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDialRunClose is the cost of one node's connection: handshake,
// one command, close. It uses a real sshd when run as root, else sshtest.
func BenchmarkDialRunClose(b *testing.B) {
	tg, cfg := benchTarget(b)
	ctx := context.Background()
	before := Dials()
	b.ResetTimer()
	for b.Loop() {
		c, err := Dial(ctx, tg, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Run(ctx, "true", nil); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.ReportMetric(float64(Dials()-before)/float64(b.N), "dials/op")
}

// Against real sshd, OpenSFTP finds sftp-server, and with none at the
// usual paths a root login falls back to sshd's subsystem (internal-sftp).
func TestOpenSSHOpenSFTP(t *testing.T) {
	_, tg, cfg := realSSHD(t)
	cfg.OpenSFTP = true
	if c := dial(t, tg, cfg); c.sftpSub {
		t.Error("the subsystem was used although sftp-server is installed")
	}
	noSFTPServerHere(t)
	c := dial(t, tg, cfg)
	if !c.sftpSub {
		t.Fatal("the subsystem was not used")
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := c.WriteFile(context.Background(), host.File{Path: p, Data: []byte("secret"), Mode: 0o600, UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v", st, err)
	}
}
