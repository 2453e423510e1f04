package modules

import (
	"strings"
	"testing"
)

func TestParseSysctl(t *testing.T) {
	v, _ := parseSysctl([]byte("net.ipv4.ip_forward = 0\nnet.ipv4.tcp_rmem = 4096\t131072\t6291456\n"))
	m := v.(map[string]string)
	if m["net.ipv4.ip_forward"] != "0" || m["net.ipv4.tcp_rmem"] != "4096 131072 6291456" {
		t.Errorf("parsed %q", m)
	}
}

func TestSysctlDecisions(t *testing.T) {
	const file = "/etc/sysctl.d/90-hastack-net.ipv4.ip_forward.conf"
	live := map[string]any{"sysctl": map[string]string{"net.ipv4.ip_forward": "0", "net.ipv4.tcp_rmem": "4096 131072 6291456"}}
	for _, tc := range []struct {
		name  string
		spec  map[string]any
		files map[string]string
		want  string
		cmds  int
	}{
		{"set and persist", map[string]any{"key": "net.ipv4.ip_forward", "value": "1"}, nil,
			"sysctl net.ipv4.ip_forward = 1 (now 0), persisted in " + file, 1},
		{"persist only", map[string]any{"key": "net.ipv4.ip_forward", "value": "0"}, nil,
			"persist sysctl net.ipv4.ip_forward = 0 in 90-hastack-net.ipv4.ip_forward.conf", 0},
		{"converged", map[string]any{"key": "net.ipv4.ip_forward", "value": "0"}, map[string]string{file: "net.ipv4.ip_forward = 0\n"}, "", 0},
		{"tabs and spaces", map[string]any{"key": "net.ipv4.tcp_rmem", "value": "4096  131072 6291456", "file": "/etc/sysctl.d/tcp.conf"},
			map[string]string{"/etc/sysctl.d/tcp.conf": "net.ipv4.tcp_rmem = 4096 131072 6291456\n"}, "", 0},
		{"set only", map[string]any{"key": "net.ipv4.ip_forward", "value": "1"}, map[string]string{file: "net.ipv4.ip_forward = 1\n"},
			"sysctl net.ipv4.ip_forward = 1 (now 0)", 1},
		{"unknown key", map[string]any{"key": "net.ipv4.nope", "value": "1"}, nil, "error: the node's kernel has no key net.ipv4.nope", 0},
		{"shell in a value", map[string]any{"key": "net.ipv4.ip_forward", "value": "1;reboot"}, nil, "error: value \"1;reboot\"", 0},
		{"bad key", map[string]any{"key": "../../x", "value": "1"}, nil, "error: \"../../x\" is not a sysctl key", 0},
		{"file elsewhere", map[string]any{"key": "net.ipv4.ip_forward", "value": "1", "file": "/etc/passwd"}, nil, "error: file \"/etc/passwd\"", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := diffOn(t, resource(t, "sysctl", "sysctl:x", tc.spec), canned(tc.files, live))
			check(t, c, err, tc.want)
			if c != nil && len(c.Commands) != tc.cmds {
				t.Errorf("commands %q", c.Commands)
			}
			if c != nil && tc.cmds == 1 && !strings.HasPrefix(c.Commands[0], "sysctl -w ") {
				t.Errorf("commands %q", c.Commands)
			}
		})
	}
}

// On a real node (its own network namespace, so net.* keys are its own):
// set now and persisted, then a hand change is planned back.
func TestLabSysctl(t *testing.T) {
	n := startNode(t)
	n.exec(t, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	r := resource(t, "sysctl", "sysctl:ip_forward", map[string]any{"key": "net.ipv4.ip_forward", "value": "1"})
	n.converge(t, r, nil)
	if got := n.exec(t, "cat", "/proc/sys/net/ipv4/ip_forward"); got != "1\n" {
		t.Errorf("live value %q", got)
	}
	if got := n.exec(t, "stat", "-c", "%U:%G %a", "/etc/sysctl.d/90-hastack-net.ipv4.ip_forward.conf"); got != "root:root 644\n" {
		t.Errorf("file %q", got)
	}
	n.exec(t, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	if c := n.converge(t, r, nil); c.Summary != "sysctl net.ipv4.ip_forward = 1 (now 0)" {
		t.Errorf("drift %q", c.Summary)
	}
	rmem := resource(t, "sysctl", "sysctl:rmem", map[string]any{"key": "net.ipv4.tcp_rmem", "value": "4096 131072 6291457", "file": "/etc/sysctl.d/91-rmem.conf"})
	n.converge(t, rmem, nil)
}
