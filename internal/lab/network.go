package lab

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// newLab lays out names and addresses, all from the lab's name (checked
// by ValidName) and node count, never from a file: the lab dir, the
// namespaces, and a /24 per lab, 10.213.<k>.0/24 with k from the name;
// controller .1, node i at .10+i (so at most MaxNodes). Nothing routes
// between labs, so two labs with the same k do not clash.
//
// A node's namespace is hl-NAME.nodeI: '.' cannot occur in a name, so no
// lab's namespace is ever another lab's (with '-', lab "a"'s node1 was the
// controller of lab "a-node1").
func newLab(name string, nodes int) *Lab {
	h := fnv.New32a()
	h.Write([]byte(name))
	net24 := fmt.Sprintf("10.213.%d", h.Sum32()%250+1)
	dir := DirOf(name)
	l := &Lab{
		Name:         name,
		Dir:          dir,
		Controller:   "hl-" + name,
		ControllerIP: net24 + ".1",
		Prefix:       24,
		KnownHosts:   filepath.Join(dir, "known_hosts"),
		Identity:     filepath.Join(dir, "id_ed25519"),
	}
	for i := 1; i <= nodes; i++ {
		n := fmt.Sprintf("node%d", i)
		l.Nodes = append(l.Nodes, Node{
			Name:  n,
			IP:    fmt.Sprintf("%s.%d", net24, 10+i),
			Netns: l.Controller + "." + n,
			Dir:   filepath.Join(dir, n),
		})
	}
	return l
}

// ip runs ip(8) with a batch of commands on stdin: one process for many.
func ip(ctx context.Context, args []string, batch string) error {
	args = append(args, "-batch", "-")
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdin = strings.NewReader(batch)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// makeNetwork creates the namespaces, the bridge in the controller
// namespace and one veth per node (the node end is named eth0 and
// configured by the node's boot script).
func (l *Lab) makeNetwork(ctx context.Context) error {
	var b strings.Builder
	fmt.Fprintf(&b, "netns add %s\n", l.Controller)
	for _, n := range l.Nodes {
		fmt.Fprintf(&b, "netns add %s\n", n.Netns)
	}
	if err := ip(ctx, nil, b.String()); err != nil {
		return err
	}
	b.Reset()
	b.WriteString("link set lo up\nlink add br0 type bridge\n")
	fmt.Fprintf(&b, "addr add %s/%d dev br0\nlink set br0 up\n", l.ControllerIP, l.Prefix)
	for i, n := range l.Nodes {
		fmt.Fprintf(&b, "link add vn%d type veth peer name eth0 netns %s\n", i+1, n.Netns)
		fmt.Fprintf(&b, "link set vn%d master br0 up\n", i+1)
	}
	return ip(ctx, []string{"-n", l.Controller}, b.String())
}

// deleteNetns deletes the named namespaces that exist; their veths and the
// bridge go with them.
func deleteNetns(names []string) error {
	var b strings.Builder
	for _, n := range names {
		if _, err := os.Stat(filepath.Join("/run/netns", n)); err == nil {
			fmt.Fprintf(&b, "netns delete %s\n", n)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	return ip(context.Background(), nil, b.String())
}

// DialContext connects from inside the controller network namespace, so an
// in-process Go test can reach the nodes. The dial runs on its own locked
// OS thread moved into the namespace; a socket keeps the namespace it was
// created in. If the thread cannot move back, it stays locked and Go ends
// it with the goroutine.
func (l *Lab) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		c, back, err := dialIn(ctx, "/run/netns/"+l.Controller, network, addr)
		if back {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// dialIn dials from the network namespace at nsPath on the current (locked)
// thread. back reports whether the thread is in its own namespace again.
func dialIn(ctx context.Context, nsPath, network, addr string) (c net.Conn, back bool, err error) {
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, true, err
	}
	defer unix.Close(self)
	target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, true, fmt.Errorf("lab: controller namespace: %w", err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("lab: setns: %w", err)
	}
	var d net.Dialer
	c, err = d.DialContext(ctx, network, addr)
	return c, unix.Setns(self, unix.CLONE_NEWNET) == nil, err
}
