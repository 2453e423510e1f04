package sshconn

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// signers loads the identity files and, when asked, the agent's keys. The
// returned closer ends the agent connection; call it after the handshake.
func signers(cfg Config, explicit bool) ([]ssh.Signer, func(), error) {
	var out []ssh.Signer
	closer := func() {}
	var agentOK bool
	if cfg.UseAgent {
		if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
			if c, err := net.Dial("unix", sock); err == nil {
				if ss, err := agent.NewClient(c).Signers(); err == nil {
					out = append(out, ss...)
					agentOK = len(ss) > 0
				}
				closer = func() { c.Close() }
			}
		}
	}
	for _, f := range cfg.IdentityFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			if !explicit && errors.Is(err, os.ErrNotExist) {
				continue // a default path that this user does not have
			}
			closer()
			return nil, nil, fmt.Errorf("identity file: %w", err)
		}
		s, err := ssh.ParsePrivateKey(b)
		var pm *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &pm) && agentOK:
			continue // the agent may hold it
		case errors.As(err, &pm):
			closer()
			return nil, nil, fmt.Errorf("identity file %s is protected by a passphrase: load it into ssh-agent (ssh-add) and set SSH_AUTH_SOCK", f)
		case err != nil:
			closer()
			return nil, nil, fmt.Errorf("identity file %s: %w", f, err)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		closer()
		return nil, nil, errors.New("no SSH key: give an identity file or run ssh-agent")
	}
	return out, closer, nil
}
