package lab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Exec runs argv inside a node's namespaces (network, mount, PID, UTS) as
// root, for test assertions, and returns its combined output. It does not
// go through SSH. It enters the node's init, found in the node's network
// namespace (nodePID), never a pid it was merely told.
func (l *Lab) Exec(ctx context.Context, node string, argv ...string) ([]byte, error) {
	d, err := l.derived()
	if err != nil {
		return nil, err
	}
	n, ok := d.Node(node)
	if !ok {
		return nil, fmt.Errorf("lab %s: no node %q", l.Name, node)
	}
	pid, err := nodePID(n)
	if err != nil {
		return nil, err
	}
	args := append([]string{"-t", strconv.Itoa(pid), "-n", "-m", "-p", "-u", "--"}, argv...)
	return run(exec.CommandContext(ctx, "nsenter", args...))
}

// ExecController runs argv in the controller network namespace (which
// shares the host's filesystem and processes).
func (l *Lab) ExecController(ctx context.Context, argv ...string) ([]byte, error) {
	d, err := l.derived()
	if err != nil {
		return nil, err
	}
	args := append([]string{"netns", "exec", d.Controller}, argv...)
	return run(exec.CommandContext(ctx, "ip", args...))
}

func run(cmd *exec.Cmd) ([]byte, error) {
	cmd.Dir = "/"
	cmd.Env = []string{
		"PATH=/opt/aspera/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "LANG=C.UTF-8",
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return out.Bytes(), nil
}
