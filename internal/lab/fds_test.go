package lab

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// A descriptor the lab command inherited (flock's lock, say) must not be
// held by the nodes' daemons for their life.
func TestNodesDoNotInheritDescriptors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inherited")
	fd, err := syscall.Open(path, syscall.O_CREAT|syscall.O_RDWR, 0600) // no O_CLOEXEC, as flock(1) leaves it
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	Start(t, 1)
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	self := strconv.Itoa(os.Getpid())
	for _, p := range procs {
		if target, err := os.Readlink(p); err == nil && target == path {
			if pid := filepath.Base(filepath.Dir(filepath.Dir(p))); pid != self {
				t.Errorf("pid %s holds the descriptor the lab command inherited", pid)
			}
		}
	}
}
