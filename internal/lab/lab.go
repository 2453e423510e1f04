// Package lab starts real test nodes on this machine: each node is an
// OpenSSH sshd in its own network, mount, UTS and PID namespaces, with the
// stand-ins for the proprietary Aspera commands installed (see standins/).
// Nodes sit on a bridge in a controller network namespace; no namespace has
// a default route, so nothing can leave the machine. It needs root.
package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// Options say what lab to start. Everything else (the lab dir, the
// namespaces, the addresses) is derived from the name: see newLab.
type Options struct {
	Name  string // short, e.g. "t3"; names the namespaces and the lab dir
	Nodes int    // number of nodes, default 3
}

// Lab is a running set of nodes. It is saved as <Dir>/lab.json.
type Lab struct {
	Name         string `json:"name"`
	Dir          string `json:"dir"`
	Controller   string `json:"controller"` // network namespace where hastack runs
	ControllerIP string `json:"controller_ip"`
	Prefix       int    `json:"prefix"` // length of the lab's IPv4 prefix
	Nodes        []Node `json:"nodes"`
	KnownHosts   string `json:"known_hosts"` // path: the nodes' host keys
	Identity     string `json:"identity"`    // path: root's ed25519 private key
	Users        Users  `json:"users"`

	procs []*os.Process // unshare processes this process started (reaped here)
}

// Node is one test node.
type Node struct {
	Name  string `json:"name"`
	IP    string `json:"ip"`
	Netns string `json:"netns"`
	PID   int    `json:"pid"` // the node's sshd (PID 1 of its PID namespace), as seen from the host
	Dir   string `json:"dir"`
}

// MaxNodes is the most nodes a lab has: the addresses of a /24 from .11
// (node1) to .254 (bench/plain_test.go plans 201).
const MaxNodes = 244

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,11}$`)

// ValidName says whether name can name a lab: 1-12 of [a-z0-9-], so that
// the lab dir and namespace names made from it are plain file names.
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("lab: name %q: want 1-12 of [a-z0-9-], starting with a letter or digit", name)
	}
	return nil
}

// Up starts a lab. It first removes the leftovers of a lab with the same
// name (a crashed run). On error it tears down what it started.
func Up(ctx context.Context, o Options) (*Lab, error) {
	if err := ValidName(o.Name); err != nil {
		return nil, err
	}
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Nodes < 1 || o.Nodes > MaxNodes {
		return nil, fmt.Errorf("lab: %d nodes: want 1-%d", o.Nodes, MaxNodes)
	}
	if err := Clean(o.Name); err != nil {
		return nil, fmt.Errorf("lab: removing leftovers: %w", err)
	}
	l := newLab(o.Name, o.Nodes)
	// Before anything that Down would undo: a dir we did not make is
	// not ours to remove.
	if err := makeLabDir(l.Dir); err != nil {
		return nil, err
	}
	if err := l.up(ctx); err != nil {
		if derr := l.Down(); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	return l, nil
}

// DirOf is the lab dir of the lab named name: fixed, so that `lab down`,
// `lab ls` and HASTACK_LAB find it, and so that nothing but the name says
// where a lab lives.
func DirOf(name string) string {
	return filepath.Join("/tmp", "hastack-lab-"+name)
}

// Load opens the lab whose dir is dir (HASTACK_LAB): dir must be a lab's
// DirOf; the lab is then the one Open returns.
func Load(dir string) (*Lab, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	name, ok := strings.CutPrefix(filepath.Base(abs), "hastack-lab-")
	if !ok || ValidName(name) != nil || DirOf(name) != abs {
		return nil, fmt.Errorf("lab: %s is not a lab dir (labs live in %s)", dir, DirOf("NAME"))
	}
	return Open(name)
}

// Open returns the running lab of that name. Its names, paths and
// addresses are derived from the name; lab.json (read from a lab dir that
// passes openLabDir's checks) only gives the node count and the nodes'
// pids, and must agree with what the name derives. A pid is a hint, checked
// before every use (see nodePID).
func Open(name string) (*Lab, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	dir := DirOf(name)
	d, err := openLabDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab %s is not up: no %s", name, dir)
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	saved, err := readLabJSON(d)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab %s: no lab.json in %s (still starting, or it crashed: hastack lab down -name %s)", name, dir, name)
	}
	if err != nil {
		return nil, err
	}
	if err := saved.matches(name); err != nil {
		return nil, err
	}
	l := newLab(name, len(saved.Nodes))
	for i := range l.Nodes {
		l.Nodes[i].PID = saved.Nodes[i].PID
	}
	return l, nil
}

// save writes lab.json: write and rename, so a reader never sees half.
func (l *Lab) save() error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(l.Dir, "lab.json")
	if err := os.WriteFile(p+".new", append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(p+".new", p)
}

// Node returns the node with the given name.
func (l *Lab) Node(name string) (Node, bool) {
	for _, n := range l.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

func (l *Lab) up(ctx context.Context) error {
	var err error
	if l.Users, err = pickIDs(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(l.Dir, "boot.sh"), bootScript, 0o755); err != nil {
		return err
	}
	if err := l.writeKeys(); err != nil {
		return err
	}
	if err := l.makeNetwork(ctx); err != nil {
		return err
	}
	// Prepare and boot the nodes in parallel: 30 nodes must start quickly.
	errs := make([]error, len(l.Nodes))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range l.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := &l.Nodes[i]
			if err := l.prepareNode(n); err != nil {
				errs[i] = fmt.Errorf("lab: %s: %w", n.Name, err)
				return
			}
			p, err := l.bootNode(ctx, n)
			if p != nil {
				mu.Lock()
				l.procs = append(l.procs, p)
				mu.Unlock()
			}
			if err != nil {
				errs[i] = fmt.Errorf("lab: %s: %w", n.Name, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return l.save()
}
