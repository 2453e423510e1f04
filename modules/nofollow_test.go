package modules

import (
	"archive/tar"
	"bytes"
	"context"
	"strings"
	"testing"

	"hastack.dev/hastack/internal/secret"
)

// Root must never read or write through a name a non-root user of the node
// can swap (nodepaths.go). These tests plant what such a user can: a link
// or a FIFO for a file it owns, a link at a temporary name root might use,
// a directory others can write in.

// TestFactsRecordIrregularFiles: the fact tar keeps a link as a link and a
// FIFO as a FIFO; the facts name them, and conf and dir refuse (modules/aspera: asconf)
// them with a message that says what the path is.
func TestFactsRecordIrregularFiles(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "/opt/aspera/etc/redis/aspera_31415.conf", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"},
		{Name: "/opt/aspera/etc/aspera.conf", Typeflag: tar.TypeFifo},
		{Name: "/opt/aspera/etc/redis", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
		{Name: "/srv/sticky/", Typeflag: tar.TypeDir, Mode: 0o1770, Uname: "root", Gname: "aspadmins"},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	nf := &NodeFacts{Files: map[string]*FileFact{}, Dirs: map[string]*FileFact{}, Irregular: map[string]string{},
		Stamps: map[string]string{}, Pending: map[string]bool{}, Users: map[string]int{"asperadaemon": 1}, Groups: map[string]int{"aspadmins": 1}}
	if err := nf.readTar(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if got := unixMode(nf.Dirs["/srv/sticky"].Mode); got != 0o1770 {
		t.Errorf("a sticky directory's mode reads %04o, want 1770", got)
	}
	env := &Env{Secret: secret.New("Passw0rd-x"), Stopped: map[string]bool{}}
	for _, tc := range []struct {
		r    *Resource
		want string
	}{
		{resource(t, "conf", "conf:x", map[string]any{"path": "/opt/aspera/etc/redis/aspera_31415.conf", "owner": "asperadaemon", "group": "aspadmins", "mode": "0640",
			"directives": []map[string]any{{"key": "port", "value": "31415"}}}), `"/opt/aspera/etc/redis/aspera_31415.conf" is a symlink to "/etc/shadow", not a regular file`},
		{resource(t, "conf", "conf:y", map[string]any{"path": "/opt/aspera/etc/aspera.conf", "owner": "root", "group": "root", "mode": "0644",
			"directives": []map[string]any{{"key": "port", "value": "1"}}}),
			`"/opt/aspera/etc/aspera.conf" is a FIFO, not a regular file`},
		{resource(t, "dir", "dir:x", map[string]any{"path": "/opt/aspera/etc/redis", "owner": "root", "group": "aspadmins", "mode": "1770"}),
			`"/opt/aspera/etc/redis" is a symlink to "/etc", not a directory`},
	} {
		m, _ := Lookup(tc.r.Kind)
		c, err := m.Diff(tc.r, &Fact{Node: nf}, env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Diff = %+v, %v; want an error saying %s", tc.r.Kind, c, err, tc.want)
		}
	}
}

// TestDirModeWithStickyBit: the dir module compares the sticky bit too.
func TestDirModeWithStickyBit(t *testing.T) {
	nf := &NodeFacts{Dirs: map[string]*FileFact{"/d": {Mode: 0o770, Owner: "root", Group: "aspadmins"}}, Irregular: map[string]string{}}
	r := resource(t, "dir", "dir:/d", map[string]any{"path": "/d", "owner": "root", "group": "aspadmins", "mode": "1770"})
	c, err := dirModule{}.Diff(r, &Fact{Node: nf}, &Env{})
	if err != nil || c == nil || !strings.Contains(c.Commands[0], "chown -h root:aspadmins /d && chmod 1770 /d") {
		t.Fatalf("change %+v, %v; want chown -h and chmod 1770", c, err)
	}
	nf.Dirs["/d"].Mode |= 1 << 20 // fs.ModeSticky
	if c, err := (dirModule{}).Diff(r, &Fact{Node: nf}, &Env{}); c != nil || err != nil {
		t.Errorf("a sticky 1770 directory still changes: %+v %v", c, err)
	}
}

// TestLabConfFollowsNoLinkAtApply: the service user swaps its config for
// a link to a root-only file between the plan and the apply. The apply
// refuses, and the target's content goes nowhere.
func TestLabConfFollowsNoLinkAtApply(t *testing.T) {
	n := startNode(t)
	const path = "/opt/aspera/etc/redis/aspera_31415.conf"
	sec := secret.New("Conf-Passw0rd-2")
	r := resource(t, "conf", "conf:"+path, map[string]any{
		"path": path, "owner": "asperadaemon", "group": "aspadmins", "mode": "0640",
		"directives": []map[string]any{{"key": "bind", "value": "10.0.0.5"}},
	})
	env := &Env{Secret: sec, Stopped: map[string]bool{}, Node: n.name}
	c := n.diff(t, r, env)
	if c == nil {
		t.Fatal("no change planned")
	}
	n.exec(t, "sh", "-c", `umask 077; echo 'root:SECRET-HASH:19000::::::' > /root/hastack-shadow
		setpriv --reuid asperadaemon --regid aspadmins --init-groups sh -c 'rm -f `+path+` && ln -s /root/hastack-shadow `+path+`' 2>&1 ||
		{ rm -f `+path+` && ln -s /root/hastack-shadow `+path+`; }`)
	err := c.Apply(context.Background(), n.h)
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("apply through a swapped-in link: %v, want a refusal naming the symlink", err)
	}
	if got := n.exec(t, "sh", "-c", "grep -rl SECRET-HASH /opt/aspera/etc/redis/ || true"); got != "" {
		t.Errorf("the link's target was copied into %s", got)
	}
	if got := n.exec(t, "stat", "-c", "%F %U", "/root/hastack-shadow"); got != "regular file root\n" {
		t.Errorf("the link's target changed: %s", got)
	}
	if got := n.exec(t, "stat", "-c", "%F", path); got != "symbolic link\n" {
		t.Errorf("%s after the refusal: %s", path, got)
	}
	// The next plan says what is wrong.
	m, _ := Lookup("conf")
	script, boundary, _ := FactScript([]Resource{*r}, Needs{})
	res, _ := n.h.Run(context.Background(), "sh -s", strings.NewReader(script))
	nf, _, perr := ParseFacts(res.Stdout, boundary, []Resource{*r})
	if perr != nil {
		t.Fatal(perr)
	}
	if _, err := m.Diff(r, &Fact{Node: nf}, env); err == nil || !strings.Contains(err.Error(), "is a symlink to") {
		t.Errorf("plan over the link: %v, want it named", err)
	}
}

// TestLabDirFollowsNoLink: a directory swapped for a link after the plan is
// not chowned through (chown -h, and the check before it), and a directory
// whose parent others can write in is refused.
func TestLabDirFollowsNoLink(t *testing.T) {
	n := startNode(t)
	n.exec(t, "sh", "-c", "mkdir -p /opt/hastack-dirtest/d /opt/hastack-victim && chmod 0755 /opt/hastack-dirtest")
	r := resource(t, "dir", "dir:/opt/hastack-dirtest/d", map[string]any{"path": "/opt/hastack-dirtest/d", "owner": "root", "group": "aspadmins", "mode": "1770"})
	c := n.converge(t, r, nil)
	if got := n.exec(t, "stat", "-c", "%U:%G %a", "/opt/hastack-dirtest/d"); got != "root:aspadmins 1770\n" {
		t.Errorf("after apply: %s", got)
	}
	// Drift, a plan, then the directory becomes a link.
	n.exec(t, "chown", "asperadaemon", "/opt/hastack-dirtest/d")
	c = n.diff(t, r, nil)
	if c == nil {
		t.Fatal("no change planned for an owner drift")
	}
	n.exec(t, "sh", "-c", "rmdir /opt/hastack-dirtest/d && ln -s /opt/hastack-victim /opt/hastack-dirtest/d")
	if err := c.Apply(context.Background(), n.h); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("apply over a link: %v, want a refusal", err)
	}
	if got := n.exec(t, "stat", "-c", "%U:%G %a", "/opt/hastack-victim"); got != "root:root 755\n" {
		t.Errorf("the link's target was changed: %s", got)
	}
	// A parent that others can write in (and not sticky) is refused.
	n.exec(t, "sh", "-c", "rm /opt/hastack-dirtest/d && mkdir /opt/hastack-dirtest/d && chmod 0777 /opt/hastack-dirtest")
	c = n.diff(t, r, nil)
	if c == nil {
		t.Fatal("no change planned for a new directory's mode")
	}
	if err := c.Apply(context.Background(), n.h); err == nil || !strings.Contains(err.Error(), "not sticky") {
		t.Errorf("apply below a world-writable parent: %v, want a refusal", err)
	}
}

// TestLabFirewallPersistFollowsNoLink: a link planted at the name the
// persist file's temporary copy used to have does not make root write
// through it, and a persist directory others can write in is refused.
func TestLabFirewallPersistFollowsNoLink(t *testing.T) {
	n := startNode(t)
	n.exec(t, "sh", "-c", "mkdir -p /etc/hastack-fw && ln -s /root/hastack-fw-victim /etc/hastack-fw/rules.v4.hastack-tmp")
	spec := map[string]any{"chain": "HASTACKFW", "sources": []string{"10.213.255.77"}, "ports": []int{5556}, "persist": "/etc/hastack-fw/rules.v4"}
	r := resource(t, "firewall", "firewall:HASTACKFW", spec)
	n.converge(t, r, nil)
	if got := n.exec(t, "sh", "-c", "ls /root/hastack-fw-victim 2>&1 || true"); !strings.Contains(got, "No such file") {
		t.Errorf("root wrote through the planted link: %s", got)
	}
	if got := n.exec(t, "sh", "-c", "stat -c '%F %a' /etc/hastack-fw/rules.v4; grep -c HASTACKFW /etc/hastack-fw/rules.v4"); !strings.HasPrefix(got, "regular file 600\n") {
		t.Errorf("persist file: %s", got)
	}
	if got := n.exec(t, "ls", "-A", "/etc/hastack-fw"); got != "rules.v4\nrules.v4.hastack-tmp\n" {
		t.Errorf("files left beside the persist file: %q", got)
	}
	n.exec(t, "sh", "-c", "chmod 0777 /etc/hastack-fw && rm /etc/hastack-fw/rules.v4")
	c := n.diff(t, r, nil)
	if c == nil {
		t.Fatal("no change planned for a missing persist file")
	}
	if err := c.Apply(context.Background(), n.h); err == nil || !strings.Contains(err.Error(), "not sticky") {
		t.Errorf("persist into a world-writable directory: %v, want a refusal", err)
	}
}
