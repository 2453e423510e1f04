package lab

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Down stops the lab: it ends each node's init (sshd, PID 1 of the node's
// PID namespace, so the kernel ends everything on the node), kills what is
// left in the nodes' network namespaces (the unshare wrappers, as a
// fallback), deletes the namespaces (their veths and the bridge go with
// them) and removes the lab dir. Every name it acts on is derived from the
// lab's name and node count, never from the fields of l, which a lab.json
// once filled. It is safe to call twice.
func (l *Lab) Down() error {
	d, err := l.derived()
	if err != nil {
		return err
	}
	for _, n := range d.Nodes {
		pids := pidsInNetns(n.Netns)
		sig := syscall.SIGTERM // to the node's init: it takes the node with it
		inits := filterInits(pids)
		if len(inits) == 0 {
			// Leftovers of a crash, no init: everything in the node's
			// namespace is the lab's.
			sig, inits = syscall.SIGKILL, pids
		}
		for _, p := range inits {
			syscall.Kill(p, sig)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, n := range d.Nodes {
		for {
			pids := pidsInNetns(n.Netns)
			if len(pids) == 0 {
				break
			}
			if time.Now().After(deadline) {
				for _, p := range pids {
					syscall.Kill(p, syscall.SIGKILL)
				}
				deadline = time.Now().Add(2 * time.Second)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var errs []error
	if err := deleteNetns(d.netnsNames()); err != nil {
		errs = append(errs, err)
	}
	if err := removeLabDir(d.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// derived returns the lab that l's name and node count derive, with l's
// pids as hints.
func (l *Lab) derived() (*Lab, error) {
	if err := ValidName(l.Name); err != nil {
		return nil, err
	}
	if len(l.Nodes) > MaxNodes {
		return nil, fmt.Errorf("lab %s: %d nodes: want at most %d", l.Name, len(l.Nodes), MaxNodes)
	}
	d := newLab(l.Name, len(l.Nodes))
	for i := range d.Nodes {
		d.Nodes[i].PID = l.Nodes[i].PID
	}
	return d, nil
}

func (l *Lab) netnsNames() []string {
	names := []string{l.Controller}
	for _, n := range l.Nodes {
		names = append(names, n.Netns)
	}
	return names
}

// removeLabDir removes dir if it is a lab dir (openLabDir); it is fine if
// it is gone.
func removeLabDir(dir string) error {
	d, err := openLabDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	d.Close()
	// RemoveAll opens each level with O_NOFOLLOW: a symlink a node's user
	// made inside its dir is removed, never followed.
	return os.RemoveAll(dir)
}

// Clean removes what a lab of this name left, even one that crashed before
// saving lab.json: the processes in its namespaces, the namespaces and its
// dir. The namespaces are those the name derives for up to MaxNodes nodes;
// the dir is DirOf(name), and only if root made it (openLabDir) and it
// looks like a lab dir: empty, holding boot.sh (the first file Up writes),
// or holding a lab.json that matches the name. Anything else is an error,
// and nothing is done.
func Clean(name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if err := checkLeftoverDir(DirOf(name), name); err != nil {
		return err
	}
	return newLab(name, MaxNodes).Down()
}

// checkLeftoverDir says whether Clean may remove dir, a lab's DirOf.
func checkLeftoverDir(dir, name string) error {
	d, err := openLabDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	saved, err := readLabJSON(d)
	if err == nil {
		return saved.matches(name)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if _, err := d.Readdirnames(1); err == io.EOF {
		return nil // empty
	}
	if _, err := os.Lstat(filepath.Join(dir, "boot.sh")); err != nil {
		return fmt.Errorf("lab: %s is not empty and holds no lab.json or boot.sh: not removing it", dir)
	}
	return nil
}

// pidsInNetns lists the processes whose network namespace is the named one.
func pidsInNetns(netns string) []int {
	var ns syscall.Stat_t
	if syscall.Stat(filepath.Join("/run/netns", netns), &ns) != nil {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if sameNetns(pid, &ns) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// sameNetns reports whether pid's network namespace is the one ns is the
// stat of.
func sameNetns(pid int, ns *syscall.Stat_t) bool {
	var st syscall.Stat_t
	return syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && st.Ino == ns.Ino && st.Dev == ns.Dev
}

// inNetns reports whether pid's network namespace is the named one.
func inNetns(pid int, netns string) bool {
	var ns syscall.Stat_t
	return syscall.Stat(filepath.Join("/run/netns", netns), &ns) == nil && sameNetns(pid, &ns)
}

// isNodeInit reports whether pid is PID 1 of a PID namespace one level
// below ours, as a node's init is (its NSpid is "<host pid> 1"). A process
// a node's user starts in a namespace of its own is deeper, and the
// unshare wrapper is not in a child namespace at all.
func isNodeInit(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			return len(f) == 2 && f[1] == "1"
		}
	}
	return false
}

func filterInits(pids []int) []int {
	var inits []int
	for _, p := range pids {
		if isNodeInit(p) {
			inits = append(inits, p)
		}
	}
	return inits
}

// nodePID returns the pid of node n's init, to enter its namespaces: n.PID
// if it still is that (a pid from lab.json, or one reused since a crash,
// may be anyone's), or else the init found in the node's namespace.
func nodePID(n Node) (int, error) {
	if n.PID > 0 && inNetns(n.PID, n.Netns) && isNodeInit(n.PID) {
		return n.PID, nil
	}
	if inits := filterInits(pidsInNetns(n.Netns)); len(inits) == 1 {
		return inits[0], nil
	}
	return 0, fmt.Errorf("lab: %s is not running (no init in network namespace %s)", n.Name, n.Netns)
}
