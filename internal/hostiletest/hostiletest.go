// Package hostiletest runs the scripts hastack sends to a node through the
// real /bin/sh of this machine with passwords that a shell would take for
// code, and records what the Redis CLI was handed. Tests of every script
// path that carries the password (facts, apply, check, drills) use it.
package hostiletest

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"hastack.dev/hastack/internal/host"
)

// Passwords are accepted by secret.Check and are shell code when unquoted.
// MARK is replaced by a path of the test's own: a password that reaches a
// shell as code creates it.
var Passwords = []string{
	"Pw1;touch${IFS}MARK",
	"Pa$$w0rd!x",
	"a|b&c(d)<e>`f`!x",
	"Pw2$(touch${IFS}MARK)",
	"a&touch${IFS}MARK&b",
	"x`touch${IFS}MARK`<>|",
}

// Node is a local host whose scripts find a stand-in asredis and redis-cli
// first on the PATH their header sets. The stand-ins record the
// REDISCLI_AUTH they were given, one line per call.
type Node struct {
	t *testing.T
	host.Host
	Dir      string // the stand-ins and their records
	Mark     string // the path a password turned into code would create
	nodePATH string
	mu       sync.Mutex
	Commands []string // every command line sent
}

// New makes a Node. nodePATH is the PATH line's value the scripts set
// (modules.NodePATH): every script sent on stdin must set it exactly once,
// and the test adds the stand-ins' folder in front of it, nothing else.
func New(t *testing.T, nodePATH string) *Node {
	t.Helper()
	// Not t.TempDir: a subtest named after a password would put its
	// characters in the path.
	dir, err := os.MkdirTemp("", "hastack-hostile-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &Node{t: t, Host: host.Local("local"), Dir: dir, Mark: filepath.Join(dir, "pwned"), nodePATH: nodePATH}
	// Answers: "WRONGPASS" for the password in ./reject (a rotation's new
	// one the server does not know yet); else a primary at 10.9.9.9 that
	// is at once a promoted primary and a replica with its link up (so
	// the drills' loops end at once); else OK.
	stub := `#!/bin/sh
d='` + dir + `'
printf '%s\n' "$REDISCLI_AUTH" >> "$d/auth"
if [ -f "$d/reject" ] && [ "$REDISCLI_AUTH" = "$(cat "$d/reject")" ]; then
	echo "WRONGPASS invalid username-password pair or user is disabled."; exit 0
fi
case "$*" in
*get-master-addr-by-name*) printf '10.9.9.9\n31415\n' ;;
*"INFO replication"*) printf 'role:master\nrole:slave\nmaster_host:10.9.9.9\nmaster_link_status:up\n' ;;
*) echo OK ;;
esac
`
	for _, name := range []string{"asredis", "redis-cli"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// Each runs f as a subtest per password of Passwords, named after it,
// each with a fresh Node and the password with MARK filled in.
func Each(t *testing.T, nodePATH string, f func(t *testing.T, n *Node, pw string)) {
	t.Helper()
	for _, raw := range Passwords {
		t.Run(raw, func(t *testing.T) {
			n := New(t, nodePATH)
			f(t, n, n.Password(raw))
		})
	}
}

// Password returns p with MARK replaced by n.Mark.
func (n *Node) Password(p string) string { return strings.ReplaceAll(p, "MARK", n.Mark) }

// Reject makes the stand-ins refuse password p.
func (n *Node) Reject(p string) {
	if err := os.WriteFile(filepath.Join(n.Dir, "reject"), []byte(p), 0o600); err != nil {
		n.t.Fatal(err)
	}
}

// Run runs cmd with the real sh. A script on stdin gets the stand-ins'
// folder put in front of the PATH its header sets.
func (n *Node) Run(ctx context.Context, cmd string, stdin io.Reader) (host.Result, error) {
	n.mu.Lock()
	n.Commands = append(n.Commands, cmd)
	n.mu.Unlock()
	if stdin != nil {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return host.Result{}, err
		}
		// The PATH line is a line of its own, maybe the first.
		line := "\nPATH=" + n.nodePATH + "\n"
		b = append([]byte("\n"), b...)
		if c := bytes.Count(b, []byte(line)); c != 1 && strings.HasPrefix(cmd, "sh -s") {
			n.t.Errorf("a script sets PATH=%s %d times, want once:\n%s", n.nodePATH, c, b)
		}
		b = bytes.Replace(b, []byte(line), []byte("\nPATH="+n.Dir+":"+n.nodePATH+"\n"), 1)[1:]
		stdin = bytes.NewReader(b)
	}
	return n.Host.Run(ctx, cmd, stdin)
}

// Auths is what the stand-ins were given, in order.
func (n *Node) Auths() []string {
	b, err := os.ReadFile(filepath.Join(n.Dir, "auth"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		n.t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// Check fails the test unless the stand-ins were called at least once, each
// time with exactly one of want, and nothing a password held ran.
func (n *Node) Check(want ...string) {
	n.t.Helper()
	if _, err := os.Stat(n.Mark); err == nil {
		n.t.Errorf("a password ran as shell code: %s exists", n.Mark)
	}
	got := n.Auths()
	if len(got) == 0 {
		n.t.Errorf("the Redis CLI was never called")
	}
	for _, a := range got {
		ok := false
		for _, w := range want {
			ok = ok || a == w
		}
		if !ok {
			n.t.Errorf("the Redis CLI got REDISCLI_AUTH %q, want one of %q", a, want)
		}
	}
}
