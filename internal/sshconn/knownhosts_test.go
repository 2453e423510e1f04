package sshconn

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"hastack.dev/hastack/internal/sshtest"
)

// Lines x/crypto's knownhosts refuses and OpenSSH skips.
var badKnownHostsLines = []string{
	"garbage",
	"host1 ssh-ed25519 not-base64!",
	"host2 ssh-ed25519",
	"@unknown-marker host3 ssh-ed25519 AAAA",
	"|1|bad|hash ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
	"host4 " + strings.Repeat("x", 70<<10),
}

func knownHostsWith(t *testing.T, lines ...string) string {
	t.Helper()
	kh := filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, kh, strings.Join(lines, "\n")+"\n")
	return kh
}

// One unparsable line used to fail every node; now it is skipped, said once.
func TestKnownHostsBadLinesSkipped(t *testing.T) {
	s, tg, cfg := setup(t, sshtest.Options{})
	good := strings.TrimSuffix(s.KnownHostsLine(), "\n")
	kh := knownHostsWith(t, append(append([]string{"# comment"}, badKnownHostsLines...), good)...)
	var warn bytes.Buffer
	cfg.KnownHosts, cfg.Warnings = []string{kh}, &warn
	if err := dialErr(tg, cfg); err != nil {
		t.Fatal(err)
	}
	for n := 2; n < 2+len(badKnownHostsLines); n++ {
		if want := kh + ":" + string(rune('0'+n)) + ":"; !strings.Contains(warn.String(), want) {
			t.Errorf("warnings lack %q:\n%s", want, warn.String())
		}
	}
	if got := strings.Count(warn.String(), "\n"); got != len(badKnownHostsLines) {
		t.Errorf("%d warning lines, want %d:\n%s", got, len(badKnownHostsLines), warn.String())
	}
}

// A @revoked line that cannot be read fails closed: skipping it could trust
// the key it revokes.
func TestKnownHostsBadRevokedLineRefused(t *testing.T) {
	s, tg, cfg := setup(t, sshtest.Options{})
	kh := knownHostsWith(t, "@revoked * ssh-ed25519 not-base64!", strings.TrimSuffix(s.KnownHostsLine(), "\n"))
	cfg.KnownHosts = []string{kh}
	err := dialErr(tg, cfg)
	if err == nil || !strings.Contains(err.Error(), "@revoked") || !strings.Contains(err.Error(), kh+":1") {
		t.Fatalf("want a refusal naming the @revoked line, got %v", err)
	}
	if s.Conns() != 0 {
		t.Error("the server got a session")
	}
}

// A revoked key stays refused when other lines are skipped, and a changed
// key is reported with its real file and line.
func TestKnownHostsSkipKeepsRevokedAndChanged(t *testing.T) {
	s, tg, cfg := setup(t, sshtest.Options{})
	revoked := "@revoked * " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey.PublicKey())))
	cfg.KnownHosts = []string{knownHostsWith(t, "garbage", revoked, strings.TrimSuffix(s.KnownHostsLine(), "\n"))}
	cfg.Warnings = &bytes.Buffer{}
	if err := dialErr(tg, cfg); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked host key was accepted: %v", err)
	}

	other := sshtest.NewSigner(t).PublicKey()
	kh := knownHostsWith(t, "garbage", knownhosts.Line([]string{s.Addr}, other))
	cfg.KnownHosts = []string{kh}
	he := hostKeyErr(t, dialErr(tg, cfg))
	if he.Unknown || len(he.Old) != 1 || he.Old[0].File != kh || he.Old[0].Line != 2 {
		t.Fatalf("want a changed key known at %s:2, got %+v", kh, he)
	}
	if s.Conns() != 0 {
		t.Error("the server got a session")
	}
}
