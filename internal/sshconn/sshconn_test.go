package sshconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/sshtest"
)

// setup starts a test server and returns a Config that trusts it.
func setup(t *testing.T, opts sshtest.Options) (*sshtest.Server, Target, Config) {
	t.Helper()
	s := sshtest.Start(t, opts)
	tg := Target{Name: "node1", Host: s.Host, Port: s.Port, User: "root"}
	cfg := Config{KnownHosts: []string{s.WriteKnownHosts(t)}, IdentityFiles: []string{s.IdentityFile}}
	return s, tg, cfg
}

func dial(t *testing.T, tg Target, cfg Config) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), tg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRun(t *testing.T) {
	s, tg, cfg := setup(t, sshtest.Options{})
	before := Dials()
	c := dial(t, tg, cfg)
	ctx := context.Background()
	cases := []struct {
		cmd, stdin, out, errOut string
		code                    int
	}{
		{cmd: "echo hi", out: "hi\n"},
		{cmd: "echo bad >&2; exit 7", errOut: "bad\n", code: 7},
		{cmd: "tr a-z A-Z", stdin: "secret\n", out: "SECRET\n"},
		{cmd: `printf '%s' "it's quoted"`, out: "it's quoted"},
	}
	for _, tc := range cases {
		var in *strings.Reader
		if tc.stdin != "" {
			in = strings.NewReader(tc.stdin)
		}
		var res host.Result
		var err error
		if in != nil {
			res, err = c.Run(ctx, tc.cmd, in)
		} else {
			res, err = c.Run(ctx, tc.cmd, nil)
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.cmd, err)
		}
		if string(res.Stdout) != tc.out || string(res.Stderr) != tc.errOut || res.Code != tc.code {
			t.Errorf("%q: got out=%q err=%q code=%d", tc.cmd, res.Stdout, res.Stderr, res.Code)
		}
	}
	if got := s.Conns(); got != 1 {
		t.Errorf("server saw %d connections, want 1", got)
	}
	if got := Dials() - before; got != 1 {
		t.Errorf("Dials() grew by %d, want 1", got)
	}
}

func TestRunSudoWrapsCommand(t *testing.T) {
	c := &Conn{sudo: true}
	if got, want := c.commandLine("echo 'a'"), `sudo -n /bin/sh -c 'echo '\''a'\'''`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestRunConcurrentBounded(t *testing.T) {
	_, tg, cfg := setup(t, sshtest.Options{})
	cfg.MaxSessions = 3
	c := dial(t, tg, cfg)
	// Each command marks itself running with a directory entry and reports
	// how many commands were running at that moment.
	dir := t.TempDir()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	peak := 0
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := fmt.Sprintf("cd %s && mkdir r%d && n=$(ls | wc -l) && sleep 0.005 && rmdir r%d && echo $n", dir, i, i)
			res, err := c.Run(context.Background(), cmd, nil)
			mu.Lock()
			defer mu.Unlock()
			var n int
			if err == nil {
				_, err = fmt.Sscan(string(res.Stdout), &n)
			}
			if err != nil || res.Code != 0 {
				errs = append(errs, fmt.Errorf("run %d: %v %q", i, err, res.Stderr))
			}
			peak = max(peak, n)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if peak < 1 || peak > 3 {
		t.Errorf("up to %d commands ran at once, MaxSessions is 3", peak)
	}
}

func TestRunCancelled(t *testing.T) {
	_, tg, cfg := setup(t, sshtest.Options{})
	c := dial(t, tg, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the command is surely running.
		c.Run(context.Background(), "true", nil)
		cancel()
	}()
	_, err := c.Run(ctx, "sleep 30", nil)
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "node1") {
		t.Fatalf("want a cancellation error naming the node, got %v", err)
	}
	// The connection is still usable.
	if res, err := c.Run(context.Background(), "echo ok", nil); err != nil || string(res.Stdout) != "ok\n" {
		t.Fatalf("after cancel: %q %v", res.Stdout, err)
	}
}

func TestRunAfterCloseNamesNode(t *testing.T) {
	_, tg, cfg := setup(t, sshtest.Options{})
	c := dial(t, tg, cfg)
	c.Close()
	if _, err := c.Run(context.Background(), "true", nil); err == nil || !strings.Contains(err.Error(), "node1") {
		t.Fatalf("got %v", err)
	}
}

func TestKeepAliveClosesDeadConnection(t *testing.T) {
	_, tg, cfg := setup(t, sshtest.Options{IgnoreKeepalives: true})
	cfg.KeepAlive = 10 * time.Millisecond
	c := dial(t, tg, cfg)
	select {
	case <-closedSignal(c):
	case <-time.After(10 * time.Second):
		t.Fatal("connection to a peer that never answers keepalives was not closed")
	}
}

// closedSignal reports when the underlying SSH connection has ended.
func closedSignal(c *Conn) <-chan struct{} {
	ch := make(chan struct{})
	go func() { c.client.Wait(); close(ch) }()
	return ch
}

func TestKeepAliveKeepsLiveConnection(t *testing.T) {
	_, tg, cfg := setup(t, sshtest.Options{})
	cfg.KeepAlive = 5 * time.Millisecond
	c := dial(t, tg, cfg)
	// Several keepalive rounds happen during these commands.
	for range 5 {
		if _, err := c.Run(context.Background(), "sleep 0.02", nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDialCancelled(t *testing.T) {
	// The handshake hangs until ctx is cancelled.
	ln := silentListener(t)
	s := sshtest.Start(t, sshtest.Options{})
	port := ln.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := Dial(ctx, Target{Name: "stuck", Host: "127.0.0.1", Port: port},
		Config{InsecureIgnoreHostKey: true, IdentityFiles: []string{s.IdentityFile}})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "stuck") {
		t.Fatalf("want cancellation naming the node, got %v", err)
	}
}

func TestDialTimeout(t *testing.T) {
	ln := silentListener(t)
	s := sshtest.Start(t, sshtest.Options{})
	_, err := Dial(context.Background(), Target{Name: "slow", Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port},
		Config{InsecureIgnoreHostKey: true, IdentityFiles: []string{s.IdentityFile}, ConnectTimeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "slow") {
		t.Fatalf("want a timeout naming the node, got %v", err)
	}
}

func TestDialUsesCustomDialer(t *testing.T) {
	_, tg, cfg := setup(t, sshtest.Options{})
	var used string
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		used = addr
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	dial(t, tg, cfg)
	if want := net.JoinHostPort(tg.Host, fmt.Sprint(tg.Port)); used != want {
		t.Fatalf("dialer got %q, want %q", used, want)
	}
}

func TestWrongClientKeyRefused(t *testing.T) {
	_, tg, cfg := setup(t, sshtest.Options{})
	other := sshtest.Start(t, sshtest.Options{}) // a different client key
	cfg.IdentityFiles = []string{other.IdentityFile}
	_, err := Dial(context.Background(), tg, cfg)
	if err == nil || !strings.Contains(err.Error(), "node1") || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("got %v", err)
	}
}

func TestMissingIdentityFile(t *testing.T) {
	_, tg, cfg := setup(t, sshtest.Options{})
	cfg.IdentityFiles = []string{filepath.Join(t.TempDir(), "nope")}
	if _, err := Dial(context.Background(), tg, cfg); err == nil || !strings.Contains(err.Error(), "identity file") {
		t.Fatalf("got %v", err)
	}
}

func TestSFTPServerMissing(t *testing.T) {
	_, tg, cfg := setup(t, sshtest.Options{})
	cfg.SFTPServer = "/nonexistent/sftp-server"
	c := dial(t, tg, cfg)
	err := c.WriteFile(context.Background(), host.File{Path: filepath.Join(t.TempDir(), "f"), Data: []byte("x"), Mode: 0o600, UID: -1, GID: -1})
	if err == nil || !strings.Contains(err.Error(), "no sftp-server found") {
		t.Fatalf("got %v", err)
	}
}

// noSFTPServerHere makes the default search find nothing on this machine.
func noSFTPServerHere(t *testing.T) {
	paths, sshd := sftpServerPaths, sftpSshd
	sftpServerPaths = []string{"/nonexistent/a/sftp-server", "/nonexistent/b/sftp-server"}
	sftpSshd = "/nonexistent/sshd"
	t.Cleanup(func() { sftpServerPaths, sftpSshd = paths, sshd })
}

// A node without sftp-server (and, under sudo, where sshd's own subsystem
// would not run as root) is refused at Dial with OpenSFTP, as apply dials:
// before anything changes, not at the first write after services stopped.
func TestSFTPServerMissingRefusedAtDial(t *testing.T) {
	noSFTPServerHere(t)
	for _, tc := range []struct {
		name string
		opts sshtest.Options
		sudo bool
	}{
		{"root, no subsystem", sshtest.Options{NoSFTP: true}, false},
		{"sudo", sshtest.Options{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, tg, cfg := setup(t, tc.opts)
			tg.Sudo = tc.sudo
			if tc.sudo {
				fakeSudo(t)
			}
			cfg.OpenSFTP = true
			_, err := Dial(context.Background(), tg, cfg)
			if err == nil {
				t.Fatal("Dial succeeded on a node with no SFTP server")
			}
			for _, want := range []string{"node1", "no sftp-server found", "/nonexistent/a/sftp-server", "/nonexistent/b/sftp-server", "Subsystem sftp", "openssh-sftp-server"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
		})
	}
}

// With no sftp-server binary, a root login uses sshd's sftp subsystem.
func TestSFTPFallsBackToSubsystem(t *testing.T) {
	noSFTPServerHere(t)
	_, tg, cfg := setup(t, sshtest.Options{})
	cfg.OpenSFTP = true
	c := dial(t, tg, cfg)
	if !c.sftpSub {
		t.Fatal("the subsystem was not used")
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := c.WriteFile(context.Background(), host.File{Path: p, Data: []byte("x"), Mode: 0o600, UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
}

// With no sftp-server at the usual paths, the one sshd -T names is used.
func TestSFTPServerFromSshd(t *testing.T) {
	if _, err := os.Stat(opensshSFTPServer); err != nil {
		t.Skipf("%s missing (Debian package openssh-sftp-server)", opensshSFTPServer)
	}
	noSFTPServerHere(t)
	fake := filepath.Join(t.TempDir(), "sshd")
	writeFile(t, fake, "#!/bin/sh\n[ \"$1\" = -T ] || exit 1\necho 'port 22'\necho 'subsystem sftp "+opensshSFTPServer+" -l INFO'\n")
	os.Chmod(fake, 0o755)
	sftpSshd = fake
	_, tg, cfg := setup(t, sshtest.Options{NoSFTP: true})
	cfg.OpenSFTP = true
	c := dial(t, tg, cfg)
	if c.sftpSub {
		t.Fatal("the subsystem was used, not sshd's sftp-server")
	}
}

func TestMain(m *testing.M) {
	// Keep the user's real ~/.ssh out of every test.
	home, err := os.MkdirTemp("", "sshconn-home")
	if err != nil {
		panic(err)
	}
	os.Setenv("HOME", home)
	os.Unsetenv("SSH_AUTH_SOCK")
	code := m.Run()
	os.RemoveAll(home)
	os.Exit(code)
}

// A fake sudo that records its arguments proves commands and the
// sftp-server are started through "sudo -n" (sshtest runs exec locally).
func TestSudoWithFakeSudo(t *testing.T) {
	if _, err := os.Stat(opensshSFTPServer); err != nil {
		t.Skipf("%s missing (Debian package openssh-sftp-server)", opensshSFTPServer)
	}
	log := fakeSudo(t)

	_, tg, cfg := setup(t, sshtest.Options{})
	tg.Sudo = true
	c := dial(t, tg, cfg)
	if res, err := c.Run(context.Background(), "echo 'it''s'", nil); err != nil || string(res.Stdout) != "its\n" {
		t.Fatalf("%q %q %v", res.Stdout, res.Stderr, err)
	}
	dir := t.TempDir()
	if err := c.WriteFile(context.Background(), host.File{Path: filepath.Join(dir, "f"), Data: []byte("x"), Mode: 0o600, UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(log)
	if string(b) != "-n\n-n\n" {
		t.Fatalf("sudo was called with %q, want -n twice (command, sftp-server)", b)
	}
}

// fakeSudo puts a sudo on PATH that logs its first argument and runs the
// rest (sshtest runs commands locally, as root); it returns the log.
func fakeSudo(t *testing.T) string {
	bin := t.TempDir()
	log := filepath.Join(bin, "log")
	writeFile(t, filepath.Join(bin, "sudo"), "#!/bin/sh\nprintf '%s\\n' \"$1\" >> "+log+"\n[ \"$1\" = -n ] || exit 1\nshift\nexec \"$@\"\n")
	os.Chmod(filepath.Join(bin, "sudo"), 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	return log
}

func TestAgentAuth(t *testing.T) {
	s, tg, cfg := setup(t, sshtest.Options{})
	serveAgent(t, s.IdentityFile)
	cfg.IdentityFiles, cfg.UseAgent = nil, true // defaults: none exist in the test HOME
	dial(t, tg, cfg)
}

// serveAgent serves an ssh-agent holding the key in keyFile on a socket
// that SSH_AUTH_SOCK names for the rest of the test.
func serveAgent(t *testing.T, keyFile string) {
	t.Helper()
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	kr := agent.NewKeyring()
	if err := kr.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(kr, c); c.Close() }()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
}

// silentListener accepts connections and never speaks SSH.
func silentListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return ln
}
