package check

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/hostiletest"
	"hastack.dev/hastack/modules/redis"
)

// adminNode runs the drill's real scripts through /bin/sh with a stand-in
// asnodeadmin first on the PATH: users are files in one folder (shared by
// all nodes: "replication" is instant), and each call's arguments are
// recorded. cancel is called when a script (after its PATH line) starts
// with cancelOn, once it has run: a Ctrl-C that loses its reply.
type adminNode struct {
	*hostiletest.Node
	users       string
	cancelOn    string
	cancel      context.CancelFunc
	mu          sync.Mutex
	liveCleanup bool // a -du ran with a context that was not done
}

func newAdminNode(t *testing.T) *adminNode {
	n := &adminNode{Node: hostiletest.New(t, redis.PATH)}
	n.users = filepath.Join(n.Dir, "users")
	if err := os.Mkdir(n.users, 0o700); err != nil {
		t.Fatal(err)
	}
	stub := `#!/bin/sh
d='` + n.Dir + `'
printf '%s\n' "$*" >> "$d/argv"
case "$1" in
-au) [ "$3" = -p ] && [ -n "$4" ] && [ "$5" = -x ] || exit 2; echo "$6" > "$d/users/$2"; echo "Added user $2" ;;
-l) ls "$d/users" ;;
-du) rm "$d/users/$2" 2>/dev/null || { echo "user $2 not found"; exit 1; }; echo "Deleted user $2" ;;
*) exit 2 ;;
esac
`
	if err := os.WriteFile(filepath.Join(n.Dir, "asnodeadmin"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *adminNode) Run(ctx context.Context, cmd string, stdin io.Reader) (host.Result, error) {
	var script []byte
	if stdin != nil {
		script, _ = io.ReadAll(stdin)
	}
	if strings.Contains(string(script), "asnodeadmin -du") && ctx.Err() == nil {
		n.mu.Lock()
		n.liveCleanup = true
		n.mu.Unlock()
	}
	res, err := n.Node.Run(ctx, cmd, strings.NewReader(string(script)))
	_, body, _ := strings.Cut(string(script), "\n")
	if n.cancelOn != "" && strings.HasPrefix(body, n.cancelOn) {
		// Ctrl-C as the script ends: the node did it, the reply is lost.
		n.cancel()
		return host.Result{}, ctx.Err()
	}
	return res, err
}

func (n *adminNode) left(t *testing.T) []string {
	es, err := os.ReadDir(n.users)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		b, _ := os.ReadFile(filepath.Join(n.users, e.Name()))
		out = append(out, e.Name()+" → "+strings.TrimSpace(string(b)))
	}
	return out
}

func (n *adminNode) argv(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(n.Dir, "argv"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func replicationChecker(n *adminNode) *Checker {
	cl := testCluster()
	hosts := map[string]host.Host{}
	for _, nd := range cl.Nodes {
		hosts[nd.Name] = n
	}
	return &Checker{Cluster: cl, Hosts: hosts}
}

// The drill maps its user to an unprivileged account, sends its password on
// no command line, removes a user a killed run left behind, and leaves
// none of its own.
func TestReplicationDrill(t *testing.T) {
	n := newAdminNode(t)
	os.WriteFile(filepath.Join(n.users, drillPrefix+"0123456789ab"), []byte("nobody\n"), 0o600)
	r := replicationChecker(n).Replication(context.Background())
	if !r.OK() || len(r) != 4 {
		t.Fatalf("drill failed: %+v", r)
	}
	if left := n.left(t); len(left) != 0 {
		t.Errorf("users left behind: %q", left)
	}
	argv := n.argv(t)
	var pass string
	for _, l := range strings.Split(argv, "\n") {
		if f := strings.Fields(l); len(f) == 6 && f[0] == "-au" {
			pass = f[3]
			if f[5] != "nobody" {
				t.Errorf("the drill user maps to %q, want an unprivileged account", f[5])
			}
		}
	}
	if pass == "" {
		t.Fatalf("no -au call:\n%s", argv)
	}
	for _, cmd := range n.Commands {
		if strings.Contains(cmd, pass) {
			t.Errorf("the drill user's password is on a command line: %s", cmd)
		}
	}
	if !strings.Contains(argv, "-du "+drillPrefix+"0123456789ab\n") {
		t.Errorf("the leftover user was not removed:\n%s", argv)
	}
}

// Ctrl-C as the add ends (its reply lost) or while the drill waits for
// replication: the drill still removes its user, with a context of its own.
func TestReplicationDrillCancelled(t *testing.T) {
	for _, after := range []string{"for u in", "asnodeadmin -l"} {
		t.Run(after, func(t *testing.T) {
			n := newAdminNode(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			n.cancel, n.cancelOn = cancel, after
			r := replicationChecker(n).Replication(ctx)
			if r.OK() {
				t.Fatalf("a cancelled drill passed: %+v", r)
			}
			if left := n.left(t); len(left) != 0 {
				t.Errorf("Ctrl-C left the drill user behind: %q", left)
			}
			if !n.liveCleanup {
				t.Error("no -du ran with a live context")
			}
		})
	}
}
