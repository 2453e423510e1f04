package lab

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
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
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l, err := Up(ctx, Options{Name: name, Nodes: nodes})
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l
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
