package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshRun logs in to a node as root through the controller namespace,
// checking the host key against the lab's known_hosts, and runs cmd.
func sshRun(t *testing.T, l *Lab, n Node, cmd string) string {
	t.Helper()
	hostKeys, err := knownhosts.New(l.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(l.Identity)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr := n.IP + ":22"
	conn, err := l.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("%s: dial: %v", n.Name, err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:              "root",
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   hostKeys,
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
	})
	if err != nil {
		conn.Close()
		t.Fatalf("%s: ssh handshake: %v", n.Name, err)
	}
	client := ssh.NewClient(cc, chans, reqs)
	defer client.Close()
	s, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("%s: %s: %v: %s", n.Name, cmd, err, out)
	}
	return string(out)
}

func exec1(t *testing.T, l *Lab, node, script string) string {
	t.Helper()
	out, err := l.Exec(context.Background(), node, "bash", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestLab(t *testing.T) {
	l := Start(t, 3)

	t.Run("ssh with recorded host key", func(t *testing.T) {
		for _, n := range l.Nodes {
			out := sshRun(t, l, n, "hostname; cat /opt/aspera/etc/aspera.conf")
			if !strings.HasPrefix(out, n.Name+"\n") || !strings.Contains(out, `<CONF version="2">`) {
				t.Errorf("%s: got %q, want hostname then aspera.conf", n.Name, out)
			}
		}
	})

	t.Run("private /opt/aspera", func(t *testing.T) {
		exec1(t, l, "node1", "touch /opt/aspera/etc/only-on-node1")
		if out := exec1(t, l, "node2", "ls /opt/aspera/etc"); strings.Contains(out, "only-on-node1") {
			t.Errorf("node2 sees node1's file: %s", out)
		}
		if _, err := os.Stat("/opt/aspera/etc/only-on-node1"); err == nil {
			t.Errorf("node1's file is on the host")
		}
	})

	t.Run("host accounts untouched", func(t *testing.T) {
		if out := exec1(t, l, "node1", "id -gn asperadaemon"); strings.TrimSpace(out) != "aspadmins" {
			t.Errorf("node1: asperadaemon's group = %q", out)
		}
		if err := exec.Command("getent", "passwd", "asperadaemon").Run(); err == nil {
			t.Errorf("asperadaemon exists on the host")
		}
	})

	t.Run("node reaches node", func(t *testing.T) {
		// bash's /dev/tcp: read node3's SSH banner from node1.
		out := exec1(t, l, "node1", fmt.Sprintf("exec 3<>/dev/tcp/%s/22; head -c 4 <&3", l.Nodes[2].IP))
		if out != "SSH-" {
			t.Errorf("node1 -> node3:22 read %q", out)
		}
	})

	t.Run("no default route", func(t *testing.T) {
		out, err := l.ExecController(context.Background(), "ip", "route", "show", "default")
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("controller: default route %q, %v", out, err)
		}
		if out := exec1(t, l, "node2", "ip route show default"); strings.TrimSpace(out) != "" {
			t.Errorf("node2: default route %q", out)
		}
	})

	t.Run("down leaves nothing", func(t *testing.T) {
		if err := l.Down(); err != nil {
			t.Fatal(err)
		}
		for _, ns := range l.netnsNames() {
			if _, err := os.Stat("/run/netns/" + ns); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("namespace %s left: %v", ns, err)
			}
		}
		for _, n := range l.Nodes {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", n.PID)); err == nil {
				t.Errorf("%s: sshd %d still running", n.Name, n.PID)
			}
		}
		if _, err := os.Stat(l.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("lab dir left: %v", err)
		}
	})
}

// After a crash, `hastack lab down -name NAME` (Clean) finds everything
// from the name alone: with lab.json gone and no pids known, it ends the
// nodes, deletes the namespaces and removes the dir.
func TestCleanAfterCrash(t *testing.T) {
	l := Start(t, 2)
	if err := os.Remove(l.Dir + "/lab.json"); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, n := range l.Nodes {
		pid, err := nodePID(Node{Name: n.Name, Netns: n.Netns}) // found, not told
		if err != nil || pid != n.PID {
			t.Fatalf("%s: init %d, %v; want sshd %d", n.Name, pid, err, n.PID)
		}
		pids = append(pids, pid)
	}
	if err := Clean(l.Name); err != nil {
		t.Fatal(err)
	}
	for _, ns := range l.netnsNames() {
		if _, err := os.Stat("/run/netns/" + ns); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s left: %v", ns, err)
		}
	}
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Errorf("node init %d still running", pid)
		}
	}
	if _, err := os.Stat(l.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab dir left: %v", err)
	}
}
