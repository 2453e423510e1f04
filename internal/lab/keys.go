package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// newKey makes an ed25519 key and returns the OpenSSH private key file
// content and the public key. Made in Go: thirty ssh-keygen runs are slow.
func newKey(comment string) (priv []byte, pub ssh.PublicKey, err error) {
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(sk, comment)
	if err != nil {
		return nil, nil, err
	}
	pub, err = ssh.NewPublicKey(pk)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(block), pub, nil
}

// writeKeys writes root's client key (Identity) and, for every node, a host
// key under the node's dir and its line in KnownHosts.
func (l *Lab) writeKeys() error {
	priv, pub, err := newKey("hastack-lab-" + l.Name)
	if err != nil {
		return err
	}
	if err := os.WriteFile(l.Identity, priv, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(l.Identity+".pub", ssh.MarshalAuthorizedKey(pub), 0o644); err != nil {
		return err
	}
	var known strings.Builder
	for _, n := range l.Nodes {
		if err := os.MkdirAll(filepath.Join(n.Dir, "run", "lab"), 0o755); err != nil {
			return err
		}
		hpriv, hpub, err := newKey("root@" + n.Name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(n.Dir, "run", "lab", "ssh_host_ed25519_key"), hpriv, 0o600); err != nil {
			return err
		}
		known.WriteString(knownhosts.Line([]string{knownhosts.Normalize(n.IP + ":22")}, hpub) + "\n")
	}
	return os.WriteFile(l.KnownHosts, []byte(known.String()), 0o644)
}
