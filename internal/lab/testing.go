package lab

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Start starts a lab of n nodes for a test and stops it when the test ends,
// whether it passed or not. It skips the test, saying why, when not root or
// when a needed program is missing (CI has them: it runs as root with
// openssh-server, redis-server, redis-sentinel, haproxy, iptables, iproute2).
func Start(t testing.TB, nodes int) *Lab {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("lab: %v", err)
	}
	// Unique per test and per process: packages' tests run in parallel.
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d", t.Name(), os.Getpid())
	name := fmt.Sprintf("t%08x", h.Sum32())
	// 90 s for a few nodes; a 201-node lab boots 201 sshds on two cores.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second+time.Duration(nodes)*time.Second/2)
	defer cancel()
	l, err := Up(ctx, Options{Name: name, Nodes: nodes})
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			// The nodes' service logs go with the lab: show their ends.
			t.Logf("lab %s: the last lines of each node's service logs:\n%s", l.Name, l.UnitLogTails(8))
		} else if notes := l.StandinNotes(); notes != "" {
			t.Logf("lab %s: the systemctl stand-in noted:\n%s", l.Name, notes)
		}
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l
}

// UnitLogTails returns the last n lines of every lab unit log
// (/var/log/lab/*.log on each node), one block per file.
func (l *Lab) UnitLogTails(n int) string {
	var b strings.Builder
	l.eachUnitLog(func(node, file string, lines []string) {
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "== %s %s\n%s\n", node, file, strings.Join(lines, "\n"))
	})
	return b.String()
}

// StandinNotes returns what the systemctl stand-in noted in the unit logs
// about itself (lines "-- ... lab systemctl: ...", and the lines after).
func (l *Lab) StandinNotes() string {
	var b strings.Builder
	l.eachUnitLog(func(node, file string, lines []string) {
		for i, line := range lines {
			if strings.Contains(line, "lab systemctl:") {
				fmt.Fprintf(&b, "== %s %s\n%s\n", node, file, strings.Join(lines[i:min(i+4, len(lines))], "\n"))
			}
		}
	})
	return b.String()
}

// eachUnitLog calls f with the lines of every node's unit logs.
func (l *Lab) eachUnitLog(f func(node, file string, lines []string)) {
	for _, nd := range l.Nodes {
		files, _ := filepath.Glob(filepath.Join(nd.Dir, "log", "lab", "*.log"))
		for _, p := range files {
			data, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			f(nd.Name, filepath.Base(p), strings.Split(strings.TrimRight(string(data), "\n"), "\n"))
		}
	}
}

// Available says why a lab cannot start here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network, mount and PID namespaces)")
	}
	for _, p := range []struct{ bin, pkg string }{
		{"/usr/sbin/sshd", "openssh-server"}, {"redis-server", "redis-server"},
		{"redis-sentinel", "redis-sentinel"}, {"redis-cli", "redis-tools"},
		{"ip", "iproute2"}, {"unshare", "util-linux"}, {"nsenter", "util-linux"},
		{"setpriv", "util-linux"},
	} {
		if _, err := exec.LookPath(p.bin); err != nil {
			return fmt.Errorf("needs %s (Debian package %s)", p.bin, p.pkg)
		}
	}
	return nil
}
