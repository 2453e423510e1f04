package sshconn

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"hastack.dev/hastack/internal/sshtest"
)

// homeSSH makes a fresh $HOME and returns its ~/.ssh.
func homeSSH(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	dir := filepath.Join(home, ".ssh")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeEncryptedKey writes a new ed25519 key protected by a passphrase.
func writeEncryptedKey(t *testing.T, path string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(pem.EncodeToMemory(blk)))
}

// An encrypted default key that no agent holds used to abort the run even
// when the next default key works: now it is skipped, named in one warning.
func TestEncryptedDefaultKeySkipped(t *testing.T) {
	s, tg, cfg := setup(t, sshtest.Options{})
	dir := homeSSH(t)
	writeEncryptedKey(t, filepath.Join(dir, "id_rsa")) // first in OpenSSH's order
	good, err := os.ReadFile(s.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "id_ed25519"), string(good))
	var warn bytes.Buffer
	cfg.IdentityFiles, cfg.BatchMode, cfg.Warnings = nil, true, &warn
	if err := dialErr(tg, cfg); err != nil {
		t.Fatal(err)
	}
	w := warn.String()
	if strings.Count(w, "\n") != 1 || !strings.Contains(w, filepath.Join(dir, "id_rsa")) || !strings.Contains(w, "passphrase") {
		t.Errorf("want one warning naming the skipped key, got:\n%s", w)
	}
}

// The same with keys given with -i.
func TestEncryptedExplicitKeySkipped(t *testing.T) {
	s, tg, cfg := setup(t, sshtest.Options{})
	enc := filepath.Join(t.TempDir(), "enc")
	writeEncryptedKey(t, enc)
	cfg.IdentityFiles = []string{enc, s.IdentityFile}
	cfg.BatchMode, cfg.Warnings = true, &bytes.Buffer{}
	if err := dialErr(tg, cfg); err != nil {
		t.Fatal(err)
	}
}

// Only an encrypted key, in batch mode: a clear error naming it.
func TestOnlyEncryptedKeyBatchMode(t *testing.T) {
	_, tg, cfg := setup(t, sshtest.Options{})
	dir := homeSSH(t)
	key := filepath.Join(dir, "id_ed25519")
	writeEncryptedKey(t, key)
	cfg.IdentityFiles, cfg.BatchMode, cfg.Warnings = nil, true, &bytes.Buffer{}
	err := dialErr(tg, cfg)
	if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "passphrase") || !strings.Contains(err.Error(), "ssh-add") {
		t.Fatalf("want an error naming %s and saying what to do, got %v", key, err)
	}
}
