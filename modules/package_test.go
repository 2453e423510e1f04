package modules

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// canned is a node's facts as a test writes them: /etc/passwd and
// /etc/group (empty unless given) and the shared facts.
func canned(files map[string]string, shared map[string]any) *NodeFacts {
	nf := &NodeFacts{Files: map[string]*FileFact{}, Dirs: map[string]*FileFact{}, Irregular: map[string]string{}, Links: map[string]string{},
		Users: map[string]int{"root": 0}, Groups: map[string]int{"root": 0}}
	for p, d := range files {
		nf.Files[p] = &FileFact{Data: []byte(d), Mode: 0o644, Owner: "root", Group: "root"}
	}
	for k, v := range shared {
		nf.SetShared(k, v)
	}
	return nf
}

func aptNode(installed map[string]string) *NodeFacts {
	return canned(nil, map[string]any{"packages": packages{Manager: "apt", Installed: installed}})
}

func diffOn(t *testing.T, r *Resource, nf *NodeFacts) (*Change, error) {
	t.Helper()
	m, err := Lookup(r.Kind)
	if err != nil {
		t.Fatal(err)
	}
	return m.Diff(r, &Fact{Node: nf}, &Env{Stopped: map[string]bool{}})
}

// Every package resource of a node is read by one dpkg-query, for the
// union of their names.
func TestPackagesOneQueryPerNode(t *testing.T) {
	var rs []Resource
	for i, names := range [][]string{{"nginx", "curl"}, {"jq"}, {"curl", "libc6:amd64"}} {
		rs = append(rs, *resource(t, "package", "package:"+string(rune('a'+i)), map[string]any{"names": names}))
	}
	script, _, err := FactScript(rs, Needs{})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(script, "dpkg-query"); n != 2 { // command -v, and the query
		t.Errorf("%d mentions of dpkg-query, want the check and one query:\n%s", n, script)
	}
	if !strings.Contains(script, "${Version}\\n' curl jq libc6:amd64 nginx;") {
		t.Errorf("the query does not ask the names once each, sorted:\n%s", script)
	}
}

func TestParsePackages(t *testing.T) {
	out := "manager apt\nii  nginx 1.22.1-9\nrc  oldpkg 2.0\nii  libc6:amd64 2.36-9\niU  halfway 1.0\nun  never\n"
	v, err := parsePackages([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	p := v.(packages)
	want := map[string]string{"nginx": "1.22.1-9", "libc6:amd64": "2.36-9", "libc6": "2.36-9"}
	if len(p.Installed) != len(want) || p.Manager != "apt" {
		t.Fatalf("got %+v, want %v", p, want)
	}
	for k, v := range want {
		if p.Installed[k] != v {
			t.Errorf("%s: %q, want %q", k, p.Installed[k], v)
		}
	}
	if _, err := parsePackages([]byte("")); err == nil {
		t.Error("an answer with no manager line was accepted")
	}
}

// Everything the package resources of a phase miss is installed by one
// apt-get, shown once, under the first; each change names its own
// packages, and running any of them installs all, once.
func TestPackageBatchedInstall(t *testing.T) {
	nf := aptNode(map[string]string{"curl": "7.88"})
	a := resource(t, "package", "package:web", map[string]any{"names": []string{"nginx", "curl"}})
	b := resource(t, "package", "package:tools", map[string]any{"names": []string{"jq", "nginx"}})
	c1, err := diffOn(t, a, nf)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := diffOn(t, b, nf)
	if err != nil {
		t.Fatal(err)
	}
	const cmd = "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold nginx jq"
	if c1.Action != Create || c1.Summary != "install nginx (apt)" || len(c1.Commands) != 1 || c1.Commands[0] != cmd {
		t.Errorf("first change %+v", c1)
	}
	if c2.Summary != "install jq, nginx (apt) (with package:web, in one command)" || c2.Commands != nil {
		t.Errorf("second change %+v", c2)
	}
	h := &recorder{}
	for _, c := range []*Change{c2, c1} {
		if err := c.Apply(context.Background(), h); err != nil {
			t.Fatal(err)
		}
	}
	if len(h.cmds) != 1 || h.cmds[0] != cmd {
		t.Errorf("ran %q, want one %q", h.cmds, cmd)
	}
	// Another phase is another command.
	b.Phase = 1
	if c3, _ := diffOn(t, b, nf); len(c3.Commands) != 1 || !strings.HasSuffix(c3.Commands[0], " jq nginx") {
		t.Errorf("a later phase's change %+v", c3)
	}
}

func TestPackageDecisions(t *testing.T) {
	nf := aptNode(map[string]string{"nginx": "1.22.1-9", "testpkg": "0.1"})
	for _, tc := range []struct {
		name string
		spec map[string]any
		want string // summary, "" for no change, "error: ..." for an error
	}{
		{"present", map[string]any{"names": []string{"nginx"}}, ""},
		{"absent, installed", map[string]any{"names": []string{"testpkg", "jq"}, "state": "absent"}, "remove testpkg 0.1 (dpkg)"},
		{"absent, not installed", map[string]any{"names": []string{"jq"}, "state": "absent"}, ""},
		{"bad state", map[string]any{"names": []string{"jq"}, "state": "latest"}, "error: state \"latest\""},
		{"shell in a name", map[string]any{"names": []string{"jq;reboot"}}, "error: \"jq;reboot\" is not a package name"},
		{"option as a name", map[string]any{"names": []string{"-oAPT::x"}}, "error: \"-oAPT::x\" is not a package name"},
		{"no names", map[string]any{"names": []string{}}, "error: names is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := diffOn(t, resource(t, "package", "package:x", tc.spec), nf)
			check(t, c, err, tc.want)
		})
	}
	// A node with rpm is an error until the dnf manager exists.
	rpm := canned(nil, map[string]any{"packages": packages{Manager: "rpm"}})
	_, err := diffOn(t, resource(t, "package", "package:x", map[string]any{"names": []string{"jq"}}), rpm)
	check(t, nil, err, "error: package:x: the node's package manager is rpm")
}

// check compares a Diff's result with want: "" no change, "error: X" an
// error containing X, otherwise the summary.
func check(t *testing.T, c *Change, err error, want string) {
	t.Helper()
	if msg, ok := strings.CutPrefix(want, "error: "); ok {
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("error %v, want one with %q", err, msg)
		}
		return
	}
	if err != nil {
		t.Fatalf("diff: %v", err)
	}
	switch {
	case want == "" && c != nil:
		t.Errorf("change %q, want none", c.Summary)
	case want != "" && c == nil:
		t.Errorf("no change, want %q", want)
	case want != "" && c.Summary != want:
		t.Errorf("summary %q, want %q", c.Summary, want)
	}
}

// A shared fact's section comes back parsed, for every resource that asked.
func TestSharedFactRoundTrip(t *testing.T) {
	rs := []Resource{*resource(t, "package", "package:a", map[string]any{"names": []string{"nginx"}})}
	_, boundary, err := FactScript(rs, Needs{})
	if err != nil {
		t.Fatal(err)
	}
	out := boundary + " @files\n" + boundary + " @shared:packages\nmanager apt\nii  nginx 1.22\n" + boundary + " package:a\n" + boundary + " @end\n"
	nf, _, err := ParseFacts([]byte(out), boundary, rs)
	if err != nil {
		t.Fatal(err)
	}
	c, err := diffOn(t, &rs[0], nf)
	if err != nil || c != nil {
		t.Errorf("installed nginx: change %v, error %v", c, err)
	}
	if _, _, err := ParseFacts([]byte(boundary+" @shared:nope\n"+boundary+" @end\n"), boundary, nil); err == nil {
		t.Error("an unknown kind of fact was accepted")
	}
}

// diffAll probes the node for all of rs with one fact script and diffs
// each, as the engine does for a node.
func (n *labNode) diffAll(t *testing.T, rs []Resource) []*Change {
	t.Helper()
	script, boundary, err := FactScript(rs, Needs{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := n.h.Run(context.Background(), "sh -s", strings.NewReader(script))
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	nf, own, err := ParseFacts(res.Stdout, boundary, rs)
	if err != nil {
		t.Fatalf("facts: %v", err)
	}
	var cs []*Change
	for i := range rs {
		m, _ := Lookup(rs[i].Kind)
		c, err := m.Diff(&rs[i], &Fact{Out: own[rs[i].ID], Node: nf}, &Env{Stopped: map[string]bool{}, Node: n.name})
		if err != nil {
			t.Fatalf("diff %s: %v", rs[i].ID, err)
		}
		cs = append(cs, c)
	}
	return cs
}

// localRepo builds two packages that install only below /opt (the node's
// own) into a file: apt repository on the node, and points the node's apt
// at it alone: nothing reaches the network (the node has none) or the
// host (/var/cache is a tmpfs of the node's mount namespace: apt's hooks write there).
func (n *labNode) localRepo(t *testing.T, names ...string) {
	t.Helper()
	n.exec(t, "mount", "-t", "tmpfs", "tmpfs", "/var/cache")
	var b strings.Builder
	b.WriteString("set -e\nmkdir -p /var/cache/apt/archives/partial /var/log/apt /opt/repo\ncd /opt/repo\n")
	for _, p := range names {
		fmt.Fprintf(&b, "mkdir -p %[1]s/DEBIAN %[1]s/opt/%[1]s\necho hello > %[1]s/opt/%[1]s/hello\n"+
			"printf 'Package: %[1]s\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: hastack <t@example.invalid>\\nDescription: hastack test package\\n' > %[1]s/DEBIAN/control\n"+
			"dpkg-deb --root-owner-group --build %[1]s %[1]s_1.0_all.deb >/dev/null\nrm -r %[1]s\n", p)
	}
	b.WriteString("dpkg-scanpackages . /dev/null > Packages 2>/dev/null\n" +
		"rm -f /etc/apt/sources.list.d/*\necho 'deb [trusted=yes] file:/opt/repo ./' > /etc/apt/sources.list\n" +
		"apt-get update -qq >/dev/null\n")
	n.exec(t, "sh", "-c", b.String())
}

// On real sshd and apt: two package resources missing three packages
// between them install with one apt-get (one entry in apt's history),
// a package installed already (dpkg) is left alone, the plan after apply
// is empty, and absent removes one again.
func TestLabPackage(t *testing.T) {
	n := startNode(t)
	n.localRepo(t, "hastack-test-a", "hastack-test-b", "hastack-test-c")
	rs := []Resource{
		*resource(t, "package", "package:one", map[string]any{"names": []string{"hastack-test-a", "dpkg"}}),
		*resource(t, "package", "package:two", map[string]any{"names": []string{"hastack-test-b", "hastack-test-c"}}),
	}
	cs := n.diffAll(t, rs)
	if cs[0] == nil || cs[0].Summary != "install hastack-test-a (apt)" || cs[1] == nil || cs[1].Summary != "install hastack-test-b, hastack-test-c (apt) (with package:one, in one command)" {
		t.Fatalf("changes %+v %+v", cs[0], cs[1])
	}
	if !strings.HasSuffix(cs[0].Commands[0], " hastack-test-a hastack-test-b hastack-test-c") {
		t.Errorf("command %q", cs[0].Commands)
	}
	for _, c := range cs {
		if err := c.Apply(context.Background(), n.h); err != nil {
			t.Fatalf("apply: %v", err)
		}
	}
	// One run of apt-get installed all three.
	history := n.exec(t, "cat", "/var/log/apt/history.log")
	var installs []string
	for _, l := range strings.Split(history, "\n") {
		if strings.HasPrefix(l, "Install: ") {
			installs = append(installs, l)
		}
	}
	if len(installs) != 1 || strings.Count(history, "Commandline: apt-get install") != 1 {
		t.Errorf("apt's history shows %d installs, want 1:\n%s", len(installs), history)
	} else {
		for _, p := range []string{"hastack-test-a:", "hastack-test-b:", "hastack-test-c:"} {
			if !strings.Contains(installs[0], p) {
				t.Errorf("%s not in the one install: %s", p, installs[0])
			}
		}
	}
	for _, p := range []string{"hastack-test-a", "hastack-test-b", "hastack-test-c"} {
		if got := n.exec(t, "cat", "/opt/"+p+"/hello"); got != "hello\n" {
			t.Errorf("%s not installed: %q", p, got)
		}
	}
	for i, c := range n.diffAll(t, rs) {
		if c != nil {
			t.Errorf("%s after apply: %s", rs[i].ID, c.Summary)
		}
	}
	gone := resource(t, "package", "package:gone", map[string]any{"names": []string{"hastack-test-b"}, "state": "absent"})
	if c := n.converge(t, gone, nil); c.Summary != "remove hastack-test-b 1.0 (dpkg)" {
		t.Errorf("removal %q", c.Summary)
	}
	if got := n.exec(t, "sh", "-c", "test -e /opt/hastack-test-b/hello && echo there || echo gone"); got != "gone\n" {
		t.Errorf("hastack-test-b's file is %s", got)
	}
	if st := n.exec(t, "sh", "-c", "dpkg-query -W -f '${db:Status-Abbrev}' hastack-test-b; echo"); strings.HasPrefix(st, "ii") {
		t.Errorf("hastack-test-b still installed: %q", st)
	}
}
