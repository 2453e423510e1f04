package sshtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is the OpenSSH server binary StartOpenSSH runs.
const SSHD = "/usr/sbin/sshd"

// OpenSSH is a real sshd on 127.0.0.1 with a temporary host key, accepting
// root logins with one temporary client key.
type OpenSSH struct {
	Addr         string
	Host         string
	Port         int
	HostKey      ssh.PublicKey
	ClientSigner ssh.Signer
	IdentityFile string
	Dir          string // holds sshd_config, keys and the log
}

// StartOpenSSH starts sshd (-D -e) and stops it in t.Cleanup. It skips the
// test, saying why, unless run as root with /usr/sbin/sshd (Debian package
// openssh-server) installed: sshd must be root to log users in.
func StartOpenSSH(t testing.TB) *OpenSSH { return StartOpenSSHWith(t, "") }

// StartOpenSSHWith is StartOpenSSH with extra sshd_config lines.
func StartOpenSSHWith(t testing.TB, extra string) *OpenSSH {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a real sshd (CI runs as root)")
	}
	if _, err := os.Stat(SSHD); err != nil {
		t.Skipf("needs %s (Debian package openssh-server)", SSHD)
	}
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hostPriv := newEd25519(t)
	writeKey(t, filepath.Join(dir, "ssh_host_ed25519_key"), hostPriv)
	hostSigner := mustSigner(t, hostPriv)
	clientPriv := newEd25519(t)
	o := &OpenSSH{Dir: dir, Host: "127.0.0.1", HostKey: hostSigner.PublicKey(),
		ClientSigner: mustSigner(t, clientPriv), IdentityFile: filepath.Join(dir, "id_ed25519")}
	writeKey(t, o.IdentityFile, clientPriv)
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(o.ClientSigner.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for range 5 { // the free port we picked may be taken before sshd binds it
		o.Port = freePort(t)
		o.Addr = net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
		if lastErr = o.start(t, extra); lastErr == nil {
			return o
		}
	}
	t.Fatalf("sshtest: sshd did not start: %v", lastErr)
	return nil
}

func (o *OpenSSH) start(t testing.TB, extra string) error {
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/ssh_host_ed25519_key
AuthorizedKeysFile %s/authorized_keys
PidFile none
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
LogLevel ERROR
`, o.Port, o.Dir, o.Dir) + extra
	cfgPath := filepath.Join(o.Dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	var log bytes.Buffer
	cmd := exec.Command(SSHD, "-D", "-e", "-f", cfgPath)
	if unshare, err := exec.LookPath("unshare"); err == nil {
		// Give sshd's sessions a stock, empty /root: this machine's
		// /root/.bashrc (pyenv init) would run for every command and make
		// each one many times slower than on a real node.
		home := filepath.Join(o.Dir, "root-home")
		if err := os.MkdirAll(home, 0o700); err != nil {
			return err
		}
		cmd = exec.Command(unshare, "--mount", "--propagation", "private", "/bin/sh", "-c",
			`mount --bind "$1" /root && exec "$2" -D -e -f "$3"`, "sh", home, SSHD, cfgPath)
	}
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("sshd exited: %s", log.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", o.Addr, time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("sshd not listening on %s after 10s: %s", o.Addr, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	return nil
}

// KnownHostsLine is the known_hosts line for this server.
func (o *OpenSSH) KnownHostsLine() string {
	return knownhosts.Line([]string{o.Addr}, o.HostKey) + "\n"
}

// WriteKnownHosts writes KnownHostsLine to a new file and returns its path.
func (o *OpenSSH) WriteKnownHosts(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(o.KnownHostsLine()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
