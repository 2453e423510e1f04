package sshconn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// defaultIdentities are the default identity files, in OpenSSH's order
// (ssh_config IdentityFile), less the types x/crypto cannot use (security
// keys, DSA): keys of those are reached through the agent.
var defaultIdentities = []string{"id_rsa", "id_ecdsa", "id_ed25519"}

// signers returns the agent's keys first, then those of the identity files
// that can be used. A file protected by a passphrase is skipped when the
// agent holds its key; otherwise its passphrase is asked on the terminal,
// and with no terminal (or Config.BatchMode) it is skipped with a warning
// naming it, so that the other keys are still tried. With identitiesOnly
// (IdentitiesOnly yes) only the agent's keys that are one of ids are used.
// The returned closer ends the agent connection; call it after the
// handshake.
func signers(ctx context.Context, cfg Config, ids []identity, identitiesOnly bool) ([]ssh.Signer, func(), error) {
	var agentKeys []ssh.Signer
	closer := func() {}
	if cfg.UseAgent {
		if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
			if c, err := net.Dial("unix", sock); err == nil {
				if ss, err := agent.NewClient(c).Signers(); err == nil {
					agentKeys = ss
				}
				closer = func() { c.Close() }
			}
		}
	}
	inAgent := map[string]bool{}
	for _, s := range agentKeys {
		inAgent[string(s.PublicKey().Marshal())] = true
	}
	var files []ssh.Signer
	fileKeys := map[string]bool{} // public keys of ids, for identitiesOnly
	var skipped []string
	for _, id := range ids {
		f := id.path
		b, err := os.ReadFile(f)
		if err != nil {
			if !id.must && errors.Is(err, os.ErrNotExist) {
				continue // a default path that this user does not have
			}
			closer()
			return nil, nil, fmt.Errorf("identity file: %w", err)
		}
		s, err := ssh.ParsePrivateKey(b)
		var pm *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &pm):
			pub := publicKeyOf(f, pm)
			if pub != nil {
				fileKeys[string(pub.Marshal())] = true
			}
			if pub != nil && inAgent[string(pub.Marshal())] {
				continue // the agent signs with it
			}
			s, err = decrypted(ctx, cfg, f, b)
			if err != nil {
				closer()
				return nil, nil, err
			}
			if s == nil {
				skipped = append(skipped, f)
				continue
			}
		case err != nil && id.must:
			closer()
			return nil, nil, fmt.Errorf("identity file %s: %w", f, err)
		case err != nil:
			cfg.warnOnce(fmt.Sprintf("identity file %s: %v: skipped", f, err))
			continue
		}
		fileKeys[string(s.PublicKey().Marshal())] = true
		files = append(files, s)
	}
	var out []ssh.Signer
	seen := map[string]bool{} // a key both in the agent and in a file is offered once
	for _, s := range append(agentKeys, files...) {
		k := string(s.PublicKey().Marshal())
		if seen[k] || identitiesOnly && !fileKeys[k] {
			continue
		}
		seen[k] = true
		out = append(out, s)
	}
	if len(out) == 0 {
		closer()
		if len(skipped) > 0 {
			return nil, nil, fmt.Errorf("no usable SSH key: %s protected by a passphrase and no ssh-agent holds it: load it with ssh-add and set SSH_AUTH_SOCK, or run hastack on a terminal to be asked for the passphrase",
				strings.Join(skipped, ", "))
		}
		return nil, nil, errors.New("no SSH key: give an identity file or run ssh-agent")
	}
	return out, closer, nil
}

// publicKeyOf is the public half of an encrypted key: in the file (OpenSSH
// format), or in FILE.pub beside it.
func publicKeyOf(file string, pm *ssh.PassphraseMissingError) ssh.PublicKey {
	if pm.PublicKey != nil {
		return pm.PublicKey
	}
	b, err := os.ReadFile(file + ".pub")
	if err != nil {
		return nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil
	}
	return pub
}

// unlocked holds the keys decrypted (or given up on) in this process, by
// file, so that the passphrase is asked once however many nodes there are.
var (
	unlockMu sync.Mutex
	unlocked = map[string]ssh.Signer{} // nil: skipped
)

// decrypted asks for the passphrase of file on the terminal, up to three
// times as ssh does. It returns nil (skipped, with a warning) when it cannot
// ask or gets an empty answer, and an error when ctx ends.
func decrypted(ctx context.Context, cfg Config, file string, pem []byte) (ssh.Signer, error) {
	unlockMu.Lock()
	defer unlockMu.Unlock()
	if s, done := unlocked[file]; done {
		return s, nil
	}
	var s ssh.Signer
	if cfg.BatchMode {
		cfg.warnOnce(fmt.Sprintf("identity file %s is protected by a passphrase and no ssh-agent holds it: skipped (batch mode; load it with ssh-add)", file))
	} else {
		var err error
		s, err = askPassphrase(ctx, cfg, file, pem)
		if err != nil {
			return nil, err
		}
	}
	unlocked[file] = s
	return s, nil
}

func askPassphrase(ctx context.Context, cfg Config, file string, pem []byte) (ssh.Signer, error) {
	for range 3 {
		pass, err := readPassphrase(ctx, "Enter passphrase for key '"+displayPath(file)+"': ")
		switch {
		case errors.Is(err, errNoTerminal):
			cfg.warnOnce(fmt.Sprintf("identity file %s is protected by a passphrase and no ssh-agent holds it: skipped (no terminal to ask on; load it with ssh-add)", file))
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("passphrase for %s: %w", file, err)
		case len(pass) == 0:
			return nil, nil // as ssh: an empty answer skips the key
		}
		s, err := ssh.ParsePrivateKeyWithPassphrase(pem, pass)
		clear(pass)
		if err == nil {
			return s, nil
		}
		ttyPrintln("Bad passphrase, try again.")
	}
	cfg.warnOnce(fmt.Sprintf("identity file %s: wrong passphrase three times: skipped", file))
	return nil, nil
}

// displayPath writes paths under $HOME as ~/..., as ssh's prompt does.
func displayPath(p string) string {
	if home, err := os.UserHomeDir(); err == nil {
		if rel, err := filepath.Rel(home, p); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join("~", rel)
		}
	}
	return p
}

var errNoTerminal = errors.New("no terminal")

// passphraseLine trims the line ending of a typed passphrase.
func passphraseLine(b []byte) []byte {
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		return b[:i]
	}
	return b
}
