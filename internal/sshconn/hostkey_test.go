package sshconn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"hastack.dev/hastack/internal/sshtest"
)

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func hostKeyErr(t *testing.T, err error) *HostKeyError {
	t.Helper()
	var he *HostKeyError
	if !errors.As(err, &he) {
		t.Fatalf("want a *HostKeyError, got %v", err)
	}
	return he
}

func TestUnknownHostKeyRefused(t *testing.T) {
	s, tg, cfg := setup(t, sshtest.Options{})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, kh, "# nothing yet\n")
	cfg.KnownHosts = []string{kh}
	_, err := Dial(context.Background(), tg, cfg)
	he := hostKeyErr(t, err)
	if !he.Unknown {
		t.Fatalf("want Unknown, got %+v", he)
	}
	fp := ssh.FingerprintSHA256(s.HostKey.PublicKey())
	for _, want := range []string{"node1", s.Addr, "ssh-ed25519", fp, "-accept-new-host-keys", kh} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%v", want, err)
		}
	}
	if s.Conns() != 0 {
		t.Errorf("an untrusted server got a session")
	}
}

func TestMissingKnownHostsMeansUnknown(t *testing.T) {
	_, tg, cfg := setup(t, sshtest.Options{})
	cfg.KnownHosts = []string{filepath.Join(t.TempDir(), "none")}
	if he := hostKeyErr(t, dialErr(tg, cfg)); !he.Unknown {
		t.Fatalf("got %+v", he)
	}
}

func dialErr(tg Target, cfg Config) error {
	c, err := Dial(context.Background(), tg, cfg)
	if err == nil {
		c.Close()
	}
	return err
}

func changedKnownHosts(t *testing.T, s *sshtest.Server) (path string, oldFP string) {
	old := sshtest.NewSigner(t).PublicKey()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, kh, "# line 1\n"+knownhosts.Line([]string{s.Addr}, old)+"\n")
	return kh, ssh.FingerprintSHA256(old)
}

func TestChangedHostKeyRefused(t *testing.T) {
	s, tg, cfg := setup(t, sshtest.Options{})
	kh, oldFP := changedKnownHosts(t, s)
	for _, acceptNew := range []bool{false, true} {
		cfg.KnownHosts, cfg.AcceptNew = []string{kh}, acceptNew
		err := dialErr(tg, cfg)
		he := hostKeyErr(t, err)
		if he.Unknown {
			t.Fatalf("a changed key reported as unknown: %v", err)
		}
		newFP := ssh.FingerprintSHA256(s.HostKey.PublicKey())
		for _, want := range []string{"CHANGED", "node1", newFP, oldFP, kh + ":2"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("AcceptNew=%v: message lacks %q:\n%v", acceptNew, want, err)
			}
		}
	}
	b, _ := os.ReadFile(kh)
	if strings.Count(string(b), "\n") != 2 {
		t.Errorf("known_hosts was modified:\n%s", b)
	}
}

func TestAcceptNewAddsKey(t *testing.T) {
	s, tg, cfg := setup(t, sshtest.Options{})
	kh := filepath.Join(t.TempDir(), "sub", "known_hosts") // directory does not exist yet
	cfg.KnownHosts, cfg.AcceptNew = []string{kh}, true
	if err := dialErr(tg, cfg); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(kh)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %v", st.Mode())
	}
	cfg.AcceptNew = false
	if err := dialErr(tg, cfg); err != nil {
		t.Fatalf("second dial with the accepted key: %v", err)
	}
	b, _ := os.ReadFile(kh)
	if strings.Count(string(b), "\n") != 1 || !strings.Contains(string(b), s.HostKey.PublicKey().Type()) {
		t.Errorf("known_hosts:\n%s", b)
	}
}

// A server with ECDSA and ed25519 host keys while known_hosts holds only the
// ed25519 one: without HostKeyAlgorithms from known_hosts, x/crypto prefers
// ECDSA, the server shows that key and the check fails as a false mismatch.
func TestHostKeyAlgorithmsFollowKnownHosts(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecSigner, err := ssh.NewSignerFromKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	ed := sshtest.NewSigner(t)
	s, tg, cfg := setup(t, sshtest.Options{HostKeys: []ssh.Signer{ecSigner, ed}})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, kh, knownhosts.Line([]string{s.Addr}, ed.PublicKey())+"\n")
	cfg.KnownHosts = []string{kh}
	if err := dialErr(tg, cfg); err != nil {
		t.Fatal(err)
	}
}

func TestHashedKnownHosts(t *testing.T) {
	s, tg, cfg := setup(t, sshtest.Options{})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.HashHostname(knownhosts.Normalize(s.Addr)) + " " +
		string(ssh.MarshalAuthorizedKey(s.HostKey.PublicKey()))
	writeFile(t, kh, line)
	cfg.KnownHosts = []string{kh}
	if err := dialErr(tg, cfg); err != nil {
		t.Fatal(err)
	}
}

func TestInsecureIgnoreHostKey(t *testing.T) {
	_, tg, cfg := setup(t, sshtest.Options{})
	cfg.KnownHosts = []string{filepath.Join(t.TempDir(), "none")}
	cfg.InsecureIgnoreHostKey = true
	if err := dialErr(tg, cfg); err != nil {
		t.Fatal(err)
	}
}
