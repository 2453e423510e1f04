package modules

import (
	"context"
	"io"
	"strings"
	"testing"

	"hastack.dev/hastack/internal/host"
)

func TestSymlinkDecisions(t *testing.T) {
	nf := canned(map[string]string{"/etc/app/file": "x"}, nil)
	nf.Links["/etc/app/ok"] = "/srv/a"
	nf.Links["/etc/app/wrong"] = "/srv/old"
	nf.Irregular["/etc/app/ok"] = `a symlink to "/srv/a"`
	nf.Irregular["/etc/app/wrong"] = `a symlink to "/srv/old"`
	nf.Irregular["/etc/app/fifo"] = "a FIFO"
	nf.Dirs["/etc/app/dir"] = &FileFact{Mode: 0o755, Owner: "root", Group: "root"}
	for _, tc := range []struct {
		path  string
		force bool
		want  string
	}{
		{"/etc/app/ok", false, ""},
		{"/etc/app/wrong", false, "symlink /etc/app/wrong → /srv/a (now → /srv/old)"},
		{"/etc/app/new", false, "symlink /etc/app/new → /srv/a"},
		{"/etc/app/file", false, "error: /etc/app/file is a regular file, not a symlink: set force to replace it"},
		{"/etc/app/file", true, "replace /etc/app/file (a regular file) with a symlink → /srv/a"},
		{"/etc/app/fifo", false, "error: /etc/app/fifo is a FIFO, not a symlink"},
		{"/etc/app/dir", true, "error: /etc/app/dir is a directory"},
		{"/etc/app/../x", false, "error: is not a clean absolute path"},
		{"etc/x", false, "error: is not a clean absolute path"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			c, err := diffOn(t, resource(t, "symlink", "symlink:"+tc.path, map[string]any{"path": tc.path, "target": "/srv/a", "force": tc.force}), nf)
			check(t, c, err, tc.want)
		})
	}
}

// The link is made under a random name in a directory checked safe, then
// renamed over the path; the target is one quoted word whatever it holds.
func TestSymlinkScript(t *testing.T) {
	nf := canned(nil, nil)
	r := resource(t, "symlink", "symlink:x", map[string]any{"path": "/etc/app/cur", "target": "../v1 $(reboot)"})
	c, err := diffOn(t, r, nf)
	if err != nil {
		t.Fatal(err)
	}
	h := &recorder{}
	var stdin []string
	if err := c.Apply(context.Background(), stdinRecorder{h, &stdin}); err != nil {
		t.Fatal(err)
	}
	s := stdin[0]
	for _, want := range []string{"hastack_safe_dir /etc/app || exit 1\n", "ln -s -- '../v1 $(reboot)' /etc/app/.hastack-link-", "mv -Tf -- /etc/app/.hastack-link-",
		"if [ -e /etc/app/cur ] && [ ! -L /etc/app/cur ]; then echo '/etc/app/cur is not a symlink: set force to replace it' >&2; exit 1; fi\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if strings.Index(s, "hastack_safe_dir /etc/app") > strings.Index(s, "ln -s") {
		t.Error("the link is made before the directory is checked")
	}
}

// stdinRecorder is a recorder that keeps what each command reads on stdin.
type stdinRecorder struct {
	*recorder
	stdin *[]string
}

func (s stdinRecorder) Run(ctx context.Context, cmd string, stdin io.Reader) (host.Result, error) {
	if stdin != nil {
		b, _ := io.ReadAll(stdin)
		*s.stdin = append(*s.stdin, string(b))
	}
	return s.recorder.Run(ctx, cmd, nil)
}

// On a real node: created, retargeted (the old target untouched), a
// regular file replaced only with force, and nothing made in a directory
// another user owns.
func TestLabSymlink(t *testing.T) {
	n := startNode(t)
	n.exec(t, "sh", "-c", "mkdir -p /etc/hastack-link /srv/v1 /srv/v2 && echo keep > /etc/hastack-link/old-target && ln -s old-target /etc/hastack-link/cur && echo file > /etc/hastack-link/plain")
	spec := map[string]any{"path": "/etc/hastack-link/cur", "target": "/srv/v1"}
	if c := n.converge(t, resource(t, "symlink", "symlink:cur", spec), nil); c.Summary != "symlink /etc/hastack-link/cur → /srv/v1 (now → old-target)" {
		t.Errorf("retarget %q", c.Summary)
	}
	if got := n.exec(t, "readlink", "/etc/hastack-link/cur"); got != "/srv/v1\n" {
		t.Errorf("readlink %q", got)
	}
	if got := n.exec(t, "cat", "/etc/hastack-link/old-target"); got != "keep\n" {
		t.Errorf("the old target was written: %q", got)
	}
	n.converge(t, resource(t, "symlink", "symlink:new", map[string]any{"path": "/etc/hastack-link/new", "target": "../v2"}), nil)
	plain := map[string]any{"path": "/etc/hastack-link/plain", "target": "/srv/v2"}
	m, _ := Lookup("symlink")
	r := resource(t, "symlink", "symlink:plain", plain)
	script, boundary, _ := FactScript([]Resource{*r}, Needs{})
	res, _ := n.h.Run(context.Background(), "sh -s", strings.NewReader(script))
	nf, _, _ := ParseFacts(res.Stdout, boundary, []Resource{*r})
	if _, err := m.Diff(r, &Fact{Node: nf}, &Env{}); err == nil || !strings.Contains(err.Error(), "is a regular file, not a symlink") {
		t.Errorf("a regular file without force: %v", err)
	}
	plain["force"] = true
	n.converge(t, resource(t, "symlink", "symlink:plain", plain), nil)
	if got := n.exec(t, "ls", "-A", "/etc/hastack-link"); got != "cur\nnew\nold-target\nplain\n" {
		t.Errorf("files left: %q", got)
	}
	// A directory the service user owns: hastack makes no link in it.
	n.exec(t, "sh", "-c", "mkdir -p /opt/hastack-unsafe && chown asperadaemon /opt/hastack-unsafe")
	c := n.diff(t, resource(t, "symlink", "symlink:unsafe", map[string]any{"path": "/opt/hastack-unsafe/l", "target": "/etc/shadow"}), nil)
	if err := c.Apply(context.Background(), n.h); err == nil || !strings.Contains(err.Error(), "not root") {
		t.Errorf("apply in a user's directory: %v", err)
	}
	if got := n.exec(t, "ls", "-A", "/opt/hastack-unsafe"); got != "" {
		t.Errorf("made in a user's directory: %q", got)
	}
}
