package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/sshconn"
)

// sshTarget is how n is reached over SSH. A port or user the CUE does not
// give is left to ~/.ssh/config (then 22 and root), as Ansible leaves
// ansible_port and ansible_user unset to ssh: see docs/ssh.md.
func sshTarget(n NodeSpec) sshconn.Target {
	t := sshconn.Target{Name: n.Name, Host: n.SSH.Host}
	if n.SSH.PortSet {
		t.Port = n.SSH.Port
	}
	if n.SSH.UserSet {
		t.User = n.SSH.User
		t.Sudo = sshconn.DefaultSudo(t.User)
	}
	return t
}

// Connector reaches one node some other way than SSH: arg is what follows
// the name in HASTACK_CONNECTOR=name[:arg] (a folder, a file of canned
// facts, ...). Connectors register themselves by name, as drivers do, so the
// engine and the CLI import none of them.
type Connector func(ctx context.Context, arg string, n NodeSpec) (host.Host, error)

var connectors = struct {
	sync.Mutex
	m map[string]Connector
}{m: map[string]Connector{}}

// RegisterConnector makes c available as name. It panics on a second
// registration of the same name (a bug of the program, found at start).
func RegisterConnector(name string, c Connector) {
	connectors.Lock()
	defer connectors.Unlock()
	if _, dup := connectors.m[name]; dup {
		panic("engine: connector " + name + " registered twice")
	}
	connectors.m[name] = c
}

// ConnectorFor parses "name[:arg]" and returns the registered connector
// bound to arg, in the form Options.Connect takes.
func ConnectorFor(spec string) (func(ctx context.Context, n NodeSpec) (host.Host, error), error) {
	name, arg, _ := strings.Cut(spec, ":")
	connectors.Lock()
	c, ok := connectors.m[name]
	var known []string
	for k := range connectors.m {
		known = append(known, k)
	}
	connectors.Unlock()
	if !ok {
		sort.Strings(known)
		return nil, fmt.Errorf("no connector %q (known: %s)", name, strings.Join(known, ", "))
	}
	return func(ctx context.Context, n NodeSpec) (host.Host, error) { return c(ctx, arg, n) }, nil
}
