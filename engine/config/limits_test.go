package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// nodesConfig writes a folder with one cluster of n nodes; the last node
// repeats the first node's IP when dup is set.
func nodesConfig(tb testing.TB, n int, dup bool) string {
	tb.Helper()
	var b strings.Builder
	b.WriteString("package cluster\n\nimport \"hastack.dev/schema/hsts\"\n\nclusters: big: hsts.#Cluster & {\n\tnodes: [\n")
	for i := 1; i <= n; i++ {
		ip := fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)
		if dup && i == n {
			ip = "10.1.0.2"
		}
		fmt.Fprintf(&b, "\t\t{name: \"n%d\", ip: %q},\n", i, ip)
	}
	b.WriteString("\t]\n\tprimary: \"n1\"\n}\n")
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.cue"), []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}

func benchmarkNodes(b *testing.B, n int) {
	dir := nodesConfig(b, n, true)
	b.ReportAllocs()
	for b.Loop() {
		_, ps, err := Load(dir)
		if err != nil || len(ps) == 0 {
			b.Fatalf("err=%v problems=%v", err, ps)
		}
	}
}

func BenchmarkVetNodes201Duplicate(b *testing.B)  { benchmarkNodes(b, 201) }
func BenchmarkVetNodes999Duplicate(b *testing.B)  { benchmarkNodes(b, 999) }
func BenchmarkVetNodes1001Duplicate(b *testing.B) { benchmarkNodes(b, 1001) } // refused unevaluated

// loadSource loads one cluster.cue holding src and returns its problems.
func loadSource(t *testing.T, src string) Problems {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, ps, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// wantProblems asserts ps holds exactly the problems whose messages contain each
// of want, in order, every one placed in the user's file.
func wantProblems(t *testing.T, what string, ps Problems, want ...string) {
	t.Helper()
	if len(ps) != len(want) {
		t.Errorf("%s: want %d problems, got:\n%v", what, len(want), ps)
		return
	}
	for i, w := range want {
		if !strings.Contains(ps[i].String(), w) || ps[i].Line == 0 {
			t.Errorf("%s: problem %d: want %q at a line of the user's file, got %q", what, i, w, ps[i].String())
		}
	}
}

// The pairwise CUE rules took 16 s for 201 nodes and minutes for 1,001; the
// duplicate must still be found, at its line (BenchmarkVetNodes* time it).
func TestDuplicateAmongManyNodes(t *testing.T) {
	_, ps, err := Load(nodesConfig(t, 999, true))
	if err != nil {
		t.Fatal(err)
	}
	wantProblems(t, "999 nodes", ps,
		"cluster.cue:6:2: clusters.big.nodes: a cluster has at most 99 nodes",
		`cluster.cue:1005:3: clusters.big.nodes[998].ssh: ssh address 10.1.0.2:22 is already used by nodes[0]`,
		`cluster.cue:1005:22: clusters.big.nodes[998].ip: ip "10.1.0.2" is already used by nodes[0]`)
}

// Past 2,000 nodes in one system, or 5,000 in all, a config is refused
// before CUE evaluates it: a 1 MiB file of 27,000 nodes took 14 s and 1.8 GB.
func TestConfigNodeGuard(t *testing.T) {
	_, ps, err := Load(nodesConfig(t, 2001, true))
	if err != nil {
		t.Fatal(err)
	}
	wantProblems(t, "2001 nodes", ps, "cluster.cue:6:2: this list has more than 2000 nodes")
	// Many clusters under the per-cluster limit add up.
	var b strings.Builder
	b.WriteString("package cluster\n\nimport \"hastack.dev/schema/hsts\"\n\n")
	for c := range 55 {
		fmt.Fprintf(&b, "clusters: c%d: hsts.#Cluster & {\n\tprimary: \"n0\"\n\tnodes: [", c)
		for i := range 91 {
			fmt.Fprintf(&b, "{name: \"n%d\", ip: \"10.%d.0.%d\"}, ", i, c, i+1)
		}
		b.WriteString("]\n}\n")
	}
	wantProblems(t, "55 clusters of 91", loadSource(t, b.String()), "cluster.cue:223:2: the config lists more than 5000 nodes")
}

func TestNodeCountLimit(t *testing.T) {
	_, ps, err := Load(nodesConfig(t, 101, false))
	if err != nil {
		t.Fatal(err)
	}
	wantProblems(t, "101 nodes", ps, "a cluster has at most 99 nodes (every Sentinel watches every other and the primary feeds every replica); this one has 101")
	if _, ps, err := Load(nodesConfig(t, 99, false)); err != nil || len(ps) > 0 {
		t.Errorf("99 nodes: err=%v problems:\n%v", err, ps)
	}
}

// Node IPs and SSH addresses are unique across every cluster of a config.
func TestUniqueAcrossClusters(t *testing.T) {
	ps := loadSource(t, `package cluster

import "hastack.dev/schema/hsts"

clusters: a: hsts.#Cluster & {
	nodes: [{name: "a1", ip: "10.0.0.1"}, {name: "a2", ip: "10.0.0.2"}, {name: "a3", ip: "10.0.0.3"}]
	primary: "a1"
}
clusters: b: hsts.#Cluster & {
	nodes: [{name: "a1", ip: "10.0.1.1"}, {name: "b2", ip: "10.0.0.2"}, {name: "b3", ip: "10.0.1.3", ssh: host: "10.0.0.3"}]
	primary: "a1"
}
`)
	wantProblems(t, "two clusters", ps,
		`cluster.cue:10:40: clusters.b.nodes[1].ssh: ssh address 10.0.0.2:22 is already used by clusters.a.nodes[1]`,
		`cluster.cue:10:57: clusters.b.nodes[1].ip: ip "10.0.0.2" is already used by clusters.a.nodes[1]`,
		`cluster.cue:10:99: clusters.b.nodes[2].ssh: ssh address 10.0.0.3:22 is already used by clusters.a.nodes[2]`)
}

func TestNodeIPsAreUnicast(t *testing.T) {
	ps := loadSource(t, `package cluster

import "hastack.dev/schema/hsts"

clusters: c: hsts.#Cluster & {
	nodes: [
		{name: "n1", ip: "0.0.0.0"},
		{name: "n2", ip: "127.0.0.1"},
		{name: "n3", ip: "255.255.255.255"},
		{name: "n4", ip: "224.0.0.1"},
		{name: "n5", ip: "169.254.1.1"},
		{name: "n6", ip: "240.0.0.1"},
		{name: "n7", ip: "10.213.0.2"},
	]
	primary: "n7"
}
`)
	wantProblems(t, "not unicast", ps,
		`nodes[0].ip: ip "0.0.0.0" is an unspecified address`,
		`nodes[1].ip: ip "127.0.0.1" is a loopback address`,
		`nodes[2].ip: ip "255.255.255.255" is the broadcast address`,
		`nodes[3].ip: ip "224.0.0.1" is a multicast address`,
		`nodes[4].ip: ip "169.254.1.1" is a link-local address`,
		`nodes[5].ip: ip "240.0.0.1" is a reserved address`)
	// A cluster that is all this machine may use loopback addresses.
	ps = loadSource(t, `package cluster

import "hastack.dev/schema/hsts"

clusters: c: hsts.#Cluster & {
	nodes: [for i in [1, 2, 3] {name: "n\(i)", ip: "127.0.0.\(i)", ssh: {host: "local", port: i}}]
	primary: "n1"
}
`)
	wantProblems(t, "all local", ps)
}

// firewall.persist is overwritten as root by iptables-save: "/" was read
// into memory whole and /etc/shadow was replaced.
func TestFirewallPersistIsAnIptablesFile(t *testing.T) {
	for _, bad := range []string{"/", "/etc/shadow", "/etc/passwd", "/etc/sudoers", "/etc/iptables/../shadow",
		"/etc//iptables/rules.v4", "/etc/iptables/", "/etc/iptables/.hidden", "/etc/iptables/rules.v4\\u001b",
		"/etc/iptables/sub/rules.v4", "/etc/iptables/rules.v6", "rules.v4"} {
		ps := loadSource(t, `package cluster

import "hastack.dev/schema/hsts"

clusters: c: hsts.#Cluster & {
	nodes: [{name: "a", ip: "10.0.0.1"}, {name: "b", ip: "10.0.0.2"}, {name: "c", ip: "10.0.0.3"}]
	primary: "a"
	firewall: persist: "`+bad+`"
}
`)
		wantProblems(t, bad, ps, "cluster.cue:8:21: clusters.c.firewall.persist: firewall.persist ")
	}
	for _, good := range []string{"/etc/iptables/rules.v4", "/etc/iptables/hastack.rules", "/etc/sysconfig/iptables"} {
		ps := loadSource(t, `package cluster

import "hastack.dev/schema/hsts"

clusters: c: hsts.#Cluster & {
	nodes: [{name: "a", ip: "10.0.0.1"}, {name: "b", ip: "10.0.0.2"}, {name: "c", ip: "10.0.0.3"}]
	primary: "a"
	firewall: persist: "`+good+`"
}
`)
		wantProblems(t, good, ps)
	}
}

// Every .cue file is checked before CUE reads it: a symlink to /dev/zero
// filled the memory, a FIFO blocked forever.
func TestCUEFilesMustBeSmallRegularFiles(t *testing.T) {
	cases := []struct {
		name  string
		plant func(dir string) error
		want  string
	}{
		{"zero", func(d string) error { return os.Symlink("/dev/zero", filepath.Join(d, "zero.cue")) },
			"zero.cue: is a symlink to a character device: a .cue file must be a regular file"},
		{"fifo", func(d string) error { return syscall.Mkfifo(filepath.Join(d, "fifo.cue"), 0o644) },
			"fifo.cue: is a named pipe (FIFO): a .cue file must be a regular file"},
		{"dangling", func(d string) error { return os.Symlink(filepath.Join(d, "gone"), filepath.Join(d, ".#emacs.cue")) },
			".#emacs.cue: is a symlink that leads nowhere readable"},
		{"huge", func(d string) error {
			return os.WriteFile(filepath.Join(d, "huge.cue"), make([]byte, MaxFileBytes+1), 0o644)
		},
			"huge.cue: is 1048577 bytes: a .cue file may hold at most 1048576 (1 MiB)"},
		{"total", func(d string) error {
			for i := range 5 {
				if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("part%d.cue", i)), make([]byte, MaxFileBytes), 0o644); err != nil {
					return err
				}
			}
			return nil
		}, "part3.cue: brings the config's .cue files past 4194304 bytes (4 MiB) in all"},
		{"dirlink", func(d string) error { return os.Symlink("/etc", filepath.Join(d, "etc")) },
			"etc: is a symlink to a folder"},
		{"deep", func(d string) error {
			if err := os.MkdirAll(filepath.Join(d, "sub", "pkg"), 0o755); err != nil {
				return err
			}
			return os.Symlink("/dev/zero", filepath.Join(d, "sub", "pkg", "x.cue"))
		}, "x.cue: is a symlink to a character device"},
	}
	for _, c := range cases {
		dir := writeConfig(t, threeNodes)
		if err := c.plant(dir); err != nil {
			t.Fatal(err)
		}
		cfg, ps, err := Load(dir)
		if err != nil || cfg != nil || len(ps) != 1 || !strings.HasSuffix(ps[0].File, filepath.Base(strings.SplitN(c.want, ":", 2)[0])) || !strings.Contains(ps[0].String(), c.want) {
			t.Errorf("%s: want one problem %q, got err=%v problems:\n%v", c.name, c.want, err, ps)
		}
	}
	// A symlink to a regular .cue file is read like the file, and hidden
	// folders such as .git are not looked into.
	dir := writeConfig(t, "")
	shared := filepath.Join(t.TempDir(), "nodes.cue")
	if err := os.WriteFile(shared, []byte("package cluster\n\nclusters: c: {\n"+threeNodes+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(shared, filepath.Join(dir, "nodes.cue")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, ".git", "x.cue")); err != nil {
		t.Fatal(err)
	}
	if _, ps, err := Load(dir); err != nil || len(ps) > 0 {
		t.Errorf("symlink to a regular file: err=%v problems:\n%v", err, ps)
	}
}

// Control characters in a value are printed escaped: an ESC sequence could
// drive the terminal and a CR or LF could forge a line or, in a GitHub
// annotation, a workflow command.
func TestProblemsEscapeControlCharacters(t *testing.T) {
	ps := loadSource(t, `package cluster

import "hastack.dev/schema/hsts"

clusters: c: hsts.#Cluster & {
	nodes: [{name: "a", ip: "10.0.0.1"}, {name: "b", ip: "10.0.0.2"}, {name: "c", ip: "10.0.0.3"}]
	primary:    "a"
	primarySet: "x\u001b]0;pwned\u0007\r\n::warning::100%\u202e"
}
`)
	if len(ps) != 1 {
		t.Fatalf("want one problem, got:\n%v", ps)
	}
	text, gh := ps[0].String(), ps[0].GitHub()
	for _, out := range []string{text, gh} {
		if strings.ContainsAny(out, "\x1b\x07\r\n\u202e") {
			t.Errorf("raw control character printed: %q", out)
		}
	}
	if !strings.Contains(text, `primarySet "x\x1b]0;pwned\x07\r\n::warning::100%\u202e" may hold only`) {
		t.Errorf("text: %q", text)
	}
	if !strings.HasPrefix(gh, "::error file=") || !strings.Contains(gh, `"x\x1b]0;pwned\x07\r\n::warning::100%25\u202e"`) {
		t.Errorf("github: %q", gh)
	}
	p := Problem{File: "a,b:c%.cue", Line: 1, Col: 2, Msg: "m"}
	if got := p.GitHub(); got != "::error file=a%2Cb%3Ac%25.cue,line=1,col=2::m" {
		t.Errorf("github file property: %q", got)
	}
}

// vet reports a bad password file at the secret's line, not only its path.
func TestSecretFileProblemIsPlaced(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("good-password-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pw, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := writeConfig(t, threeNodes+"\tsecret: file: \""+pw+"\"\n")
	cfg, ps, err := Load(dir)
	if err != nil || len(ps) > 0 {
		t.Fatalf("err=%v problems %v", err, ps)
	}
	got := cfg.SecretProblems()
	if len(got) != 1 || got[0].Line != 8 || !strings.Contains(got[0].String(), "has mode 0644, open to others") {
		t.Errorf("want one problem at line 8 about the mode, got %v", got)
	}
}
