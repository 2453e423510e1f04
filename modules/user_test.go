package modules

import (
	"context"
	"strings"
	"testing"
)

const (
	passwdFixture = "root:x:0:0:root:/root:/bin/bash\nweb:x:1500:1500::/srv/web:/usr/sbin/nologin\nbob:x:1600:1500::/home/bob:/bin/bash\n"
	groupFixture  = "root:x:0:\nweb:x:1500:\nadm:x:4:bob\nwww-data:x:33:\n"
)

func accountsNode() *NodeFacts {
	return canned(map[string]string{"/etc/passwd": passwdFixture, "/etc/group": groupFixture}, nil)
}

func TestUserDecisions(t *testing.T) {
	nf := accountsNode()
	for _, tc := range []struct {
		name     string
		spec     map[string]any
		want     string // as for check
		commands string // the one command line, when there is a change
	}{
		{"converged", map[string]any{"name": "web", "uid": 1500, "group": "web", "home": "/srv/web", "shell": "/usr/sbin/nologin", "groups": []string{}}, "", ""},
		{"new", map[string]any{"name": "app", "uid": 1700, "group": "web", "groups": []string{"adm", "www-data"}, "home": "/srv/app", "shell": "/bin/sh", "system": true},
			"create user app (uid 1700, group web)", "useradd -u 1700 -g web -G adm,www-data -m -d /srv/app -s /bin/sh -r app"},
		{"new, no home", map[string]any{"name": "app", "uid": 1700, "group": "web"}, "create user app (uid 1700, group web)", "useradd -u 1700 -g web -M app"},
		{"groups exactly", map[string]any{"name": "bob", "uid": 1600, "group": "web", "groups": []string{"www-data"}},
			"update user bob: groups adm → www-data", "usermod -G www-data bob"},
		{"groups left alone", map[string]any{"name": "bob", "uid": 1600, "group": "web"}, "", ""},
		{"no groups", map[string]any{"name": "bob", "uid": 1600, "group": "web", "groups": []string{}}, "update user bob: groups adm → (none)", "usermod -G '' bob"},
		{"shell and home", map[string]any{"name": "web", "uid": 1500, "group": "web", "shell": "/bin/bash", "home": "/var/lib/web"},
			"update user web: home /srv/web → /var/lib/web, shell /usr/sbin/nologin → /bin/bash", "usermod -d /var/lib/web -s /bin/bash web"},
		{"primary group", map[string]any{"name": "bob", "uid": 1600, "group": "adm"}, "update user bob: group adm", "usermod -g adm bob"},
		{"uid taken", map[string]any{"name": "carol", "uid": 1600, "group": "web"}, "error: uid 1600 is user bob's on the node: the stack gives it to carol", ""},
		{"renumbered", map[string]any{"name": "bob", "uid": 1601, "group": "web"}, "error: user bob has uid 1600 on the node, the stack fixes 1601", ""},
		{"no uid", map[string]any{"name": "bob", "group": "web"}, "error: uid is required", ""},
		{"shell in a name", map[string]any{"name": "x;id", "uid": 1, "group": "web"}, `error: "x;id" is not a user or group name`, ""},
		{"option as a group", map[string]any{"name": "x", "uid": 1, "group": "-o"}, `error: "-o" is not a user or group name`, ""},
		{"shell in groups", map[string]any{"name": "x", "uid": 1, "group": "web", "groups": []string{"adm,root"}}, `error: "adm,root" is not`, ""},
		{"colon in home", map[string]any{"name": "x", "uid": 1, "group": "web", "home": "/a:b"}, `error: "/a:b" is not an absolute path`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := diffOn(t, resource(t, "user", "user:x", tc.spec), nf)
			check(t, c, err, tc.want)
			if c != nil && (len(c.Commands) != 1 || c.Commands[0] != tc.commands) {
				t.Errorf("commands %q, want %q", c.Commands, tc.commands)
			}
		})
	}
}

func TestGroupDecisions(t *testing.T) {
	nf := accountsNode()
	for _, tc := range []struct {
		name     string
		spec     map[string]any
		want     string
		commands string
	}{
		{"converged", map[string]any{"name": "web", "gid": 1500}, "", ""},
		{"new", map[string]any{"name": "app", "gid": 1700, "system": true}, "create group app (gid 1700)", "groupadd -g 1700 -r app"},
		{"gid taken", map[string]any{"name": "app", "gid": 33}, "error: gid 33 is group www-data's on the node: the stack gives it to app", ""},
		{"renumbered", map[string]any{"name": "web", "gid": 1501}, "error: group web has gid 1500 on the node, the stack fixes 1501", ""},
		{"no gid", map[string]any{"name": "web"}, "error: gid is required", ""},
		{"bad name", map[string]any{"name": "Web$(x)", "gid": 1}, "error: \"Web$(x)\" is not a group name", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := diffOn(t, resource(t, "group", "group:x", tc.spec), nf)
			check(t, c, err, tc.want)
			if c != nil && (len(c.Commands) != 1 || c.Commands[0] != tc.commands) {
				t.Errorf("commands %q, want %q", c.Commands, tc.commands)
			}
		})
	}
}

// On a real node: a group and a user with fixed ids are created, a hand
// edit of the shell is planned back and fixed, and a uid another account
// holds is refused in the plan.
func TestLabUserGroup(t *testing.T) {
	n := startNode(t)
	const id = 47213
	if got := n.exec(t, "sh", "-c", "getent passwd 47213 47214; getent group 47213; true"); got != "" {
		t.Fatalf("test ids are taken on this machine: %s", got)
	}
	g := resource(t, "group", "group:hastack-g", map[string]any{"name": "hastack-g", "gid": id})
	if c := n.converge(t, g, nil); c.Summary != "create group hastack-g (gid 47213)" {
		t.Errorf("group change %q", c.Summary)
	}
	spec := map[string]any{"name": "hastack-u", "uid": id + 1, "group": "hastack-g", "groups": []string{"aspadmins"}, "home": "/home/hastack-u", "shell": "/bin/sh"}
	u := resource(t, "user", "user:hastack-u", spec)
	n.converge(t, u, nil)
	if got := n.exec(t, "id", "hastack-u"); !strings.HasPrefix(got, "uid=47214(hastack-u) gid=47213(hastack-g) groups=47213(hastack-g),") || !strings.Contains(got, "(aspadmins)") {
		t.Errorf("id: %s", got)
	}
	if got := n.exec(t, "stat", "-c", "%U:%G", "/home/hastack-u"); got != "hastack-u:hastack-g\n" {
		t.Errorf("home %s", got)
	}
	n.exec(t, "usermod", "-s", "/bin/bash", "hastack-u")
	if c := n.converge(t, u, nil); c.Summary != "update user hastack-u: shell /bin/bash → /bin/sh" {
		t.Errorf("drift %q", c.Summary)
	}
	taken := resource(t, "user", "user:other", map[string]any{"name": "hastack-v", "uid": id + 1, "group": "hastack-g"})
	m, _ := Lookup("user")
	script, boundary, _ := FactScript([]Resource{*taken}, Needs{})
	res, err := n.h.Run(context.Background(), "sh -s", strings.NewReader(script))
	if err != nil {
		t.Fatal(err)
	}
	nf, _, err := ParseFacts(res.Stdout, boundary, []Resource{*taken})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Diff(taken, &Fact{Node: nf}, &Env{}); err == nil || !strings.Contains(err.Error(), "uid 47214 is user hastack-u's") {
		t.Errorf("a taken uid: %v", err)
	}
}
