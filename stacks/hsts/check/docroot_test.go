package check

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/stacks/hsts"
)

// elsewhere is a node whose docroot is another directory of this machine:
// the config's path is mounted from other storage there.
type elsewhere struct {
	host.Host
	from, to string
}

func (e elsewhere) Run(ctx context.Context, cmd string, stdin io.Reader) (host.Result, error) {
	b, _ := io.ReadAll(stdin)
	return e.Host.Run(ctx, cmd, strings.NewReader(strings.ReplaceAll(string(b), e.from, e.to)))
}

// docrootChecker is three nodes on this machine sharing docroot, except
// node3 when local is set (a directory of its own).
func docrootChecker(t *testing.T, docroot, local string) *Checker {
	cl := testCluster()
	cl.Users = hsts.Users{Transfer: []string{"xfer"}, Docroot: docroot}
	cl.Frontend = &hsts.Frontend{TransferIDs: map[string][2]int{"xfer": {3001, 3002}}}
	hosts := map[string]host.Host{}
	for _, n := range cl.Nodes {
		hosts[n.Name] = host.Local(n.Name)
	}
	if local != "" {
		hosts["node3"] = elsewhere{host.Local("node3"), docroot, local}
	}
	return &Checker{Cluster: cl, Hosts: hosts}
}

// userDir is a directory the transfer user (uid 3001) can write, below
// parents it can search (t.TempDir's are 0700).
func userDir(t *testing.T, name string) string {
	d := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(d, 0o777); err != nil {
		t.Fatal(err)
	}
	for p := filepath.Dir(d); p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	return d
}

// The docroot probe: written as the transfer user on node1, read on the
// others, removed; a node whose docroot is a directory of its own fails,
// by name; so do a docroot the user cannot write and one that is missing.
func TestDocrootProbe(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the probe runs as the transfer user's uid (setpriv): needs root, as CI runs")
	}
	ctx := context.Background()
	shared := userDir(t, "shared")
	r := docrootChecker(t, shared, "").Docroot(ctx, []string{"node1", "node2", "node3"})
	var b strings.Builder
	r.Write(&b)
	if !r.OK() || len(r) != 3 || !strings.Contains(b.String(), "xfer (uid 3001) wrote a probe under "+shared) ||
		strings.Count(b.String(), "reads node1's probe under "+shared+": one storage") != 2 {
		t.Fatalf("one shared docroot:\n%s", b.String())
	}
	if left, _ := os.ReadDir(shared); len(left) != 0 {
		t.Errorf("the probe was left behind: %v", left)
	}

	local := userDir(t, "node3-local")
	r = docrootChecker(t, shared, local).Docroot(ctx, []string{"node1", "node2", "node3"})
	b.Reset()
	r.Write(&b)
	if r.OK() || strings.Join(r.Failed(), ",") != "node3: docroot" || !strings.Contains(b.String(), "does not read node1's probe under "+shared) {
		t.Errorf("node3 with a local docroot:\n%s", b.String())
	}

	rootOnly := filepath.Join(t.TempDir(), "root-only")
	os.Mkdir(rootOnly, 0o755)
	for _, tc := range []struct{ dir, want string }{
		{rootOnly, "xfer (uid 3001) cannot write a probe under " + rootOnly + ": "},
		{filepath.Join(shared, "missing"), "is not a directory"},
	} {
		r = docrootChecker(t, tc.dir, "").Docroot(ctx, []string{"node1", "node2", "node3"})
		b.Reset()
		r.Write(&b)
		if r.OK() || len(r) != 1 || !strings.Contains(b.String(), tc.want) {
			t.Errorf("docroot %s:\n%s", tc.dir, b.String())
		}
	}
}
