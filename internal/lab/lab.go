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
	"sync"
)

// Options say what lab to start.
type Options struct {
	Name  string // short, e.g. "t3"; names the namespaces
	Nodes int    // number of nodes, default 3
	Dir   string // default $TMPDIR/hastack-lab-<Name>
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

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,11}$`)

// Up starts a lab. It first removes the leftovers of a lab with the same
// name (a crashed run). On error it tears down what it started.
func Up(ctx context.Context, o Options) (*Lab, error) {
	if !nameRE.MatchString(o.Name) {
		return nil, fmt.Errorf("lab: name %q: want 1-12 of [a-z0-9-]", o.Name)
	}
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Nodes < 1 || o.Nodes > 200 {
		return nil, fmt.Errorf("lab: %d nodes: want 1-200", o.Nodes)
	}
	if o.Dir == "" {
		o.Dir = DefaultDir(o.Name)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if err := Clean(o.Name, dir); err != nil {
		return nil, fmt.Errorf("lab: removing leftovers: %w", err)
	}
	l := newLab(o.Name, dir, o.Nodes)
	if err := l.up(ctx); err != nil {
		if derr := l.Down(); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	return l, nil
}

// DefaultDir is where a lab named name lives unless told otherwise.
func DefaultDir(name string) string {
	return filepath.Join(os.TempDir(), "hastack-lab-"+name)
}

// Load reads a lab saved by Up, e.g. to stop it from another process.
func Load(dir string) (*Lab, error) {
	b, err := os.ReadFile(filepath.Join(dir, "lab.json"))
	if err != nil {
		return nil, err
	}
	l := new(Lab)
	if err := json.Unmarshal(b, l); err != nil {
		return nil, fmt.Errorf("lab: %s: %w", dir, err)
	}
	return l, nil
}

func (l *Lab) save() error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(l.Dir, "lab.json"), append(b, '\n'), 0o644)
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
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return err
	}
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
	if err := l.save(); err != nil { // early, so `lab down` can clean a half-started lab
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
