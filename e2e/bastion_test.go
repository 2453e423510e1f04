package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"hastack.dev/hastack/internal/lab"
)

// TestBastion is issue 10's proof of ~/.ssh/config support: three HSTS
// nodes that only a bastion can reach (the controller's packets to them
// are rejected), and hastack run from the controller with nothing but an
// OpenSSH client config (ProxyJump, HostName, User, IdentityFile,
// UserKnownHostsFile): no HASTACK_LAB, no SSH flag. plan, apply and check
// each log in to the bastion once and to each node once, from the
// bastion, as the nodes' sshd logs show; a changed host key of the bastion
// is refused and no node is reached.
func TestBastion(t *testing.T) {
	t.Parallel()
	l := lab.Start(t, 4)
	nodes, bastion := l.Nodes[:3], l.Nodes[3]
	if err := l.OnlyVia(t.Context(), bastion.Name); err != nil {
		t.Fatal(err)
	}
	// The controller reaches the bastion's sshd, not a node's.
	if c, err := l.DialContext(t.Context(), "tcp", nodes[0].IP+":22"); err == nil {
		c.Close()
		t.Fatal("the controller reaches node1 directly")
	}
	if c, err := l.DialContext(t.Context(), "tcp", bastion.IP+":22"); err != nil {
		t.Fatalf("the controller does not reach the bastion: %v", err)
	} else {
		c.Close()
	}

	dir := t.TempDir()
	var cue strings.Builder
	cue.WriteString("package cluster\n\nimport \"hastack.dev/schema/hsts\"\n\nclusters: behind: hsts.#Cluster & {\n\tnodes: [\n")
	var ips []string
	for _, n := range nodes {
		// No ssh: field: user and port come from the ssh config.
		fmt.Fprintf(&cue, "\t\t{name: %q, ip: %q},\n", n.Name, n.IP)
		ips = append(ips, n.IP)
	}
	cue.WriteString("\t]\n\tprimary: \"node1\"\n\tsecret: env: \"HASTACK_REDIS_PASSWORD\"\n\tusers: transfer: [\"xfer\", \"xfer2\"]\n}\n")
	writeTestFile(t, filepath.Join(dir, "cluster.cue"), cue.String())

	home := t.TempDir() // no ~/.ssh: everything is in the file below
	sshDir := t.TempDir()
	known := filepath.Join(sshDir, "known_hosts")
	kh, err := os.ReadFile(l.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, known, string(kh))
	sshConfig := filepath.Join(sshDir, "config")
	writeTestFile(t, sshConfig, fmt.Sprintf(`# The nodes sit behind the bastion.
Host bastion
  HostName %s
Host %s
  ProxyJump bastion
Host *
  User root
  IdentityFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  BatchMode yes
`, bastion.IP, strings.Join(ips, " "), l.Identity, known))

	// run runs hastack in the controller namespace with only the ssh
	// config (in $HASTACK_SSH_CONFIG unless args name one with -F).
	run := func(args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		cmd := l.ControllerCommand(ctx, append(append([]string{os.Args[0]}, args...), dir)...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C.UTF-8", runCLI + "=1",
			"HASTACK_REDIS_PASSWORD=" + testPassword}
		if !strings.Contains(strings.Join(args, " "), "-F ") {
			cmd.Env = append(cmd.Env, "HASTACK_SSH_CONFIG="+sshConfig)
		}
		code, out := runLogged(t, cmd, args)
		if strings.Contains(out, testPassword) {
			t.Errorf("hastack %s printed the password", args[0])
		}
		return code, out
	}
	// logins counts each lab node's accepted SSH logins, by source address.
	logins := func() map[string]map[string]int {
		t.Helper()
		got := map[string]map[string]int{}
		for _, n := range l.Nodes {
			log, err := l.SSHDLog(n.Name)
			if err != nil {
				t.Fatal(err)
			}
			got[n.Name] = map[string]int{}
			for _, m := range acceptedRE.FindAllStringSubmatch(log, -1) {
				got[n.Name][m[1]]++
			}
		}
		return got
	}
	// once runs hastack and checks it logged in once to the bastion (from
	// the controller) and once to each node (from the bastion).
	once := func(want int, args ...string) string {
		t.Helper()
		before := logins()
		code, out := run(args...)
		if code != want {
			t.Fatalf("hastack %s exited %d, want %d", strings.Join(args, " "), code, want)
		}
		after := logins()
		for _, n := range l.Nodes {
			from := bastion.IP
			if n.Name == bastion.Name {
				from = l.ControllerIP
			}
			for src, count := range after[n.Name] {
				d := count - before[n.Name][src]
				if src == from && d != 1 || src != from && d != 0 {
					t.Errorf("hastack %s: %s: %d new SSH logins from %s, want %d from %s only",
						args[0], n.Name, d, src, 1, from)
				}
			}
			if after[n.Name][from]-before[n.Name][from] == 0 {
				t.Errorf("hastack %s: %s: no SSH login from %s", args[0], n.Name, from)
			}
		}
		return out
	}

	if out := once(2, "plan", "-detailed-exitcode"); !strings.Contains(out, "node node1 ("+nodes[0].IP+":22)") {
		t.Error("the plan of the fresh nodes does not show node1")
	}
	once(0, "apply", "-auto-approve", "-F", sshConfig)
	if out := once(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
		t.Error("the plan after apply is not empty")
	}
	once(0, "check", "-wait", "30s")

	// The bastion's host key changes (a reinstalled or spoofed bastion):
	// refused, with no login anywhere, so no node is touched.
	writeTestFile(t, known, replaceHostKey(t, string(kh), bastion.IP, nodes[0].IP))
	before := logins()
	for _, args := range [][]string{{"plan"}, {"apply", "-auto-approve"}} {
		code, out := run(args...)
		if code != 1 {
			t.Errorf("hastack %s with the bastion's key changed exited %d, want 1", args[0], code)
		}
		if !strings.Contains(out, "jump host bastion: REFUSED: THE HOST KEY OF "+bastion.IP+":22 HAS CHANGED") ||
			!strings.Contains(out, "nothing was changed on any node") {
			t.Errorf("hastack %s does not refuse the bastion's changed key clearly", args[0])
		}
	}
	after := logins()
	for _, n := range l.Nodes {
		for src, count := range after[n.Name] {
			if count != before[n.Name][src] {
				t.Errorf("%s: %d SSH logins from %s after the bastion's key changed", n.Name, count-before[n.Name][src], src)
			}
		}
	}
}

// acceptedRE is sshd's line for a login: "Accepted publickey for root
// from 10.213.7.14 port 40000 ssh2: ED25519 SHA256:...".
var acceptedRE = regexp.MustCompile(`(?m)Accepted publickey for \S+ from (\S+) port \d+`)

// replaceHostKey gives host's known_hosts entry the key of another entry:
// the key it offers no longer matches.
func replaceHostKey(t *testing.T, known, host, keyOf string) string {
	t.Helper()
	var hostLine, keyLine int = -1, -1
	lines := strings.Split(known, "\n")
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		switch f[0] {
		case host:
			hostLine = i
		case keyOf:
			keyLine = i
		}
	}
	if hostLine < 0 || keyLine < 0 {
		t.Fatalf("known_hosts has no line for %s or %s:\n%s", host, keyOf, known)
	}
	lines[hostLine] = host + " " + strings.Join(strings.Fields(lines[keyLine])[1:], " ")
	return strings.Join(lines, "\n")
}

func writeTestFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
