package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// OnlyVia makes node bastion the only node the controller namespace can
// reach, as a production network behind a jump host: packets from the
// controller to every other node are rejected (iptables OUTPUT in the
// controller namespace), while the nodes still reach each other over the
// bridge. It lasts until the lab is down.
func (l *Lab) OnlyVia(ctx context.Context, bastion string) error {
	if _, ok := l.Node(bastion); !ok {
		return fmt.Errorf("lab %s: no node %q", l.Name, bastion)
	}
	var others []string
	for _, n := range l.Nodes {
		if n.Name != bastion {
			others = append(others, n.IP)
		}
	}
	if len(others) == 0 {
		return nil
	}
	// REJECT, not DROP: a connection from the controller fails at once.
	_, err := l.ExecController(ctx, "iptables", "-w", "-A", "OUTPUT", "-d", strings.Join(others, ","), "-j", "REJECT")
	return err
}

// ControllerCommand is argv run in the controller network namespace (the
// host's files and processes), as a user on a machine outside the nodes'
// network would run it. The caller sets its environment and output.
func (l *Lab) ControllerCommand(ctx context.Context, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.Controller}, argv...)...)
}

// SSHDLog is node's sshd log so far (sshd -e writes it to boot.log):
// tests count the logins in it.
func (l *Lab) SSHDLog(node string) (string, error) {
	n, ok := l.Node(node)
	if !ok {
		return "", fmt.Errorf("lab %s: no node %q", l.Name, node)
	}
	b, err := os.ReadFile(filepath.Join(n.Dir, "boot.log"))
	return string(b), err
}
