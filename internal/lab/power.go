package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// PowerOff crashes a node as a power cut would: SIGKILL to its init, so the
// kernel ends every process of its PID namespace at once, with no clean
// shutdown (no unit is stopped, no pid file removed). Its network
// namespace is deleted: what a machine's kernel holds (addresses, a VIP
// keepalived had added, iptables rules, IPVS, conntrack) is gone with its
// RAM, and a VIP left behind would answer next to the survivor's. Its
// disks (the node dir) stay. The NIC's MAC is kept for Boot, and br0's MAC
// is pinned first: a bridge otherwise takes its lowest port's MAC, and
// losing a port would change it under every other node's ARP cache.
func (l *Lab) PowerOff(node string) error {
	i, n, err := l.nodeIndex(node)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid, err := nodePID(n)
	if err != nil {
		return err
	}
	if err := l.saveMAC(ctx, i, n); err != nil {
		return err
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for deadline := time.Now().Add(10 * time.Second); ; {
		pids := pidsInNetns(n.Netns)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, p := range pids {
				syscall.Kill(p, syscall.SIGKILL) // the unshare wrapper, should it linger
			}
			deadline = time.Now().Add(2 * time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The pair first, so Boot can add it again at once (a deleted
	// namespace's devices go away asynchronously).
	if err := ip(ctx, []string{"-n", l.Controller}, fmt.Sprintf("link del vn%d\n", i+1)); err != nil {
		return err
	}
	if err := deleteNetns([]string{n.Netns}); err != nil {
		return err
	}
	l.Nodes[i].PID = 0
	return l.save()
}

// saveMAC pins br0's MAC and writes the node's eth0 MAC to its dir.
func (l *Lab) saveMAC(ctx context.Context, i int, n Node) error {
	out, err := l.ExecController(ctx, "cat", "/sys/class/net/br0/address")
	if err != nil {
		return err
	}
	if err := ip(ctx, []string{"-n", l.Controller}, "link set br0 address "+strings.TrimSpace(string(out))+"\n"); err != nil {
		return err
	}
	mac, err := l.Exec(ctx, n.Name, "cat", "/sys/class/net/eth0/address")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(n.Dir, "mac"), mac, 0o644)
}

// Boot starts a node that PowerOff stopped, as Up started it: the same
// network namespace name, veth, MAC and address, the same host key (in its
// /run/lab, kept: known_hosts still holds) and disks. /run and /tmp start
// empty, as a real boot makes them (tmpfs /run; Debian's tmpfiles.d
// empties /tmp), except /run/lab, the lab's own files (sshd_config, host
// key, wrappers, the /run/lab/restart flag). boot.sh then starts the units
// enabled in multi-user.target.wants, as systemd would at boot.
func (l *Lab) Boot(ctx context.Context, node string) error {
	i, n, err := l.nodeIndex(node)
	if err != nil {
		return err
	}
	if _, err := nodePID(n); err == nil {
		return fmt.Errorf("lab: %s is running", node)
	}
	mac, err := os.ReadFile(filepath.Join(n.Dir, "mac"))
	if err != nil {
		return fmt.Errorf("lab: %s was not powered off by PowerOff: %w", node, err)
	}
	if err := ip(ctx, nil, "netns add "+n.Netns+"\n"); err != nil {
		return err
	}
	if err := ip(ctx, []string{"-n", l.Controller}, fmt.Sprintf(
		"link add vn%d type veth peer name eth0 netns %s\nlink set vn%d master br0 up\n", i+1, n.Netns, i+1)); err != nil {
		return err
	}
	if err := ip(ctx, []string{"-n", n.Netns}, "link set eth0 address "+strings.TrimSpace(string(mac))+"\n"); err != nil {
		return err
	}
	for _, d := range []string{"run", "tmp"} {
		ents, err := os.ReadDir(filepath.Join(n.Dir, d))
		if err != nil {
			return err
		}
		for _, e := range ents {
			if d == "run" && e.Name() == "lab" {
				continue
			}
			// RemoveAll does not follow a symlink a node's user made.
			if err := os.RemoveAll(filepath.Join(n.Dir, d, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := os.Mkdir(filepath.Join(n.Dir, "run/sshd"), 0o755); err != nil {
		return err
	}
	nn := l.Nodes[i]
	nn.PID = 0
	p, err := l.bootNode(ctx, &nn)
	if p != nil {
		l.procs = append(l.procs, p)
	}
	if err != nil {
		return fmt.Errorf("lab: %s: %w", node, err)
	}
	l.Nodes[i].PID = nn.PID
	return l.save()
}

func (l *Lab) nodeIndex(node string) (int, Node, error) {
	d, err := l.derived()
	if err != nil {
		return 0, Node{}, err
	}
	for i, n := range d.Nodes {
		if n.Name == node {
			return i, n, nil
		}
	}
	return 0, Node{}, fmt.Errorf("lab %s: no node %q", l.Name, node)
}
