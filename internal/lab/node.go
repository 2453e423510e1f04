package lab

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

//go:embed boot.sh
var bootScript []byte

// sshdConfig is each node's sshd_config. It lives in the node's /run/lab,
// as the lab dir is hidden inside the node.
const sshdConfig = `# hastack lab node %s
ListenAddress 0.0.0.0
Port 22
HostKey /run/lab/ssh_host_ed25519_key
PidFile none
PermitRootLogin prohibit-password
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
Subsystem sftp /usr/lib/openssh/sftp-server
`

// prepareNode lays out the node's private directories in its lab dir:
// what boot.sh mounts over /opt, /root, /home, /run, /tmp, ...
func (l *Lab) prepareNode(n *Node) error {
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{
		{"etc.upper", 0o755}, {"etc.upper/iptables", 0o755}, {"etc.work", 0o700},
		{"varlib.upper", 0o755}, {"varlib.upper/hastack", 0o755}, {"varlib.work", 0o700},
		{"opt", 0o755}, {"root", 0o700}, {"root/.ssh", 0o700}, {"home", 0o755},
		{"log", 0o755}, {"log/lab", 0o755}, {"units", 0o755}, {"etc-units", 0o755},
		{"run", 0o755}, {"run/sshd", 0o755}, {"run/lab", 0o755}, {"tmp", 0o1777},
	} {
		p := filepath.Join(n.Dir, d.path)
		if err := os.MkdirAll(p, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil { // MkdirAll's mode is masked by umask
			return err
		}
	}
	if err := l.writeUserFiles(n); err != nil {
		return err
	}
	// A stock root home: the host's /root/.bashrc is slow (see notes).
	for _, f := range []string{".bashrc", ".profile"} {
		if b, err := os.ReadFile("/etc/skel/" + f); err == nil {
			if err := os.WriteFile(filepath.Join(n.Dir, "root", f), b, 0o644); err != nil {
				return err
			}
		}
	}
	pub, err := os.ReadFile(l.Identity + ".pub")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(n.Dir, "root/.ssh/authorized_keys"), pub, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(n.Dir, "run/lab/sshd_config"), fmt.Appendf(nil, sshdConfig, n.Name), 0o644); err != nil {
		return err
	}
	if err := installHostUnits(n); err != nil {
		return err
	}
	return l.installStandins(n)
}

// bootNode starts the node's namespaces and sshd, and waits until sshd
// accepts TCP connections from the controller namespace.
func (l *Lab) bootNode(ctx context.Context, n *Node) (*os.Process, error) {
	logf, err := os.Create(filepath.Join(n.Dir, "boot.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", n.Netns,
		"unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc", "--propagation", "private",
		"sh", filepath.Join(l.Dir, "boot.sh"))
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"NODE_NAME=" + n.Name,
		"NODE_IP=" + n.IP + "/" + strconv.Itoa(l.Prefix),
		"NODE_DIR=" + n.Dir,
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	// Own session: a Ctrl-C at `hastack lab up` must not reach the nodes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	closeInheritedOnExec()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() // reap unshare whenever it ends

	deadline := time.Now().Add(60 * time.Second)
	fail := func(what string) error {
		log, _ := os.ReadFile(filepath.Join(n.Dir, "boot.log"))
		return fmt.Errorf("%s; boot.log:\n%s", what, bytes.TrimSpace(log))
	}
	for n.PID == 0 || !l.answers(ctx, n) {
		select {
		case <-exited:
			return cmd.Process, fail("node exited while booting")
		case <-ctx.Done():
			return cmd.Process, fail(ctx.Err().Error())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return cmd.Process, fail("sshd did not come up in 60s")
		}
		if n.PID == 0 {
			n.PID = sshdChild(cmd.Process.Pid)
		}
	}
	return cmd.Process, nil
}

// sshdChild returns the pid of unshare's child once it has become sshd.
func sshdChild(unsharePID int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", unsharePID, unsharePID))
	if err != nil {
		return 0
	}
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "sshd" {
			return pid
		}
	}
	return 0
}

// answers reports whether the node's sshd sends its SSH banner.
func (l *Lab) answers(ctx context.Context, n *Node) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c, err := l.DialContext(ctx, "tcp", n.IP+":22")
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	banner := make([]byte, 4)
	_, err = io.ReadFull(c, banner)
	return err == nil && string(banner) == "SSH-"
}

// closeInheritedOnExec marks every descriptor this process inherited (above
// stderr) close-on-exec, so a node's daemons do not hold it for their life:
// `flock LOCK hastack lab up` otherwise left the lock held by the lab's
// nodes until `lab down`.
func closeInheritedOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
