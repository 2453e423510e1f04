package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Down stops the lab: it ends each node's sshd (PID 1 of the node's PID
// namespace, so the kernel ends everything on the node), kills what is left
// in the nodes' network namespaces (the unshare wrappers, as a fallback),
// deletes the namespaces (their veths and the bridge go with them) and
// removes the lab dir. It is safe to call twice.
func (l *Lab) Down() error {
	var errs []error
	for _, n := range l.Nodes {
		// Signal only a pid that is still in the node's namespace: after a
		// crash the number may belong to someone else by now.
		if n.PID > 0 && inNetns(n.PID, n.Netns) {
			syscall.Kill(n.PID, syscall.SIGTERM)
		} else if n.PID == 0 {
			// Leftovers of a crash, sshd unknown: everything in the
			// node's namespace is the lab's.
			for _, p := range pidsInNetns(n.Netns) {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, n := range l.Nodes {
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
	if err := deleteNetns(l.netnsNames()); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(l.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (l *Lab) netnsNames() []string {
	names := []string{l.Controller}
	for _, n := range l.Nodes {
		names = append(names, n.Netns)
	}
	return names
}

// Clean removes what a lab of this name left, even one that crashed before
// saving lab.json: the processes in its namespaces, the namespaces and its
// dir. It refuses to delete a dir that does not look like a lab dir.
func Clean(name, dir string) error {
	if l, err := Load(dir); err == nil {
		if err := l.Down(); err != nil {
			return err
		}
	} else if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		if _, err := os.Stat(filepath.Join(dir, "boot.sh")); err != nil { // the first file Up writes
			return fmt.Errorf("%s exists, is not empty and holds no lab.json: not removing it", dir)
		}
	}
	// Namespaces without a lab.json (crash before it was written).
	l := &Lab{Controller: "hl-" + name}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if rest, ok := strings.CutPrefix(e.Name(), l.Controller+"-node"); ok {
			if _, err := strconv.Atoi(rest); err == nil {
				l.Nodes = append(l.Nodes, Node{Netns: e.Name()})
			}
		}
	}
	l.Dir = dir
	return l.Down()
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
		var st syscall.Stat_t
		if syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && st.Ino == ns.Ino && st.Dev == ns.Dev {
			pids = append(pids, pid)
		}
	}
	return pids
}

func inNetns(pid int, netns string) bool {
	for _, p := range pidsInNetns(netns) {
		if p == pid {
			return true
		}
	}
	return false
}
