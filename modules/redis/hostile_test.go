package redis

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"hastack.dev/hastack/internal/hostiletest"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// Every Go-side script of this package that carries the password, run
// through the real /bin/sh with passwords a shell takes for code: the Redis
// CLI gets the password byte for byte, and nothing in it runs.
func TestHostilePasswordScripts(t *testing.T) {
	ctx := context.Background()
	for name, f := range map[string]func(t *testing.T, n *hostiletest.Node, pw string){
		"facts": func(t *testing.T, n *hostiletest.Node, pw string) {
			script, _, err := modules.FactScript(nil, modules.Needs{Shared: Needs(&SentinelAt{Addr: "127.0.0.1 41415", Set: "myprimary"}, "127.0.0.1 31415")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := n.Run(ctx, "sh -s", strings.NewReader(string(secret.Fill([]byte(script), secret.New(pw))))); err != nil {
				t.Fatal(err)
			}
			n.Check(pw)
		},
		"rotation-fallback": func(t *testing.T, n *hostiletest.Node, pw string) {
			old := pw + "-old"
			n.Reject(pw) // the server knows only the previous password
			if _, err := Run(ctx, n, "redisq -h 127.0.0.1 -p 31415 PING\n", secret.New(pw).WithPrevious(secret.New(old))); err != nil {
				t.Fatal(err)
			}
			n.Check(pw, old)
			if a := n.Auths(); len(a) != 2 || a[1] != old {
				t.Errorf("the fallback did not use the previous password: %q", a)
			}
		},
		"apply-live-set": func(t *testing.T, n *hostiletest.Node, pw string) {
			if err := (live{}).Set(ctx, n, "127.0.0.1 31415", "CONFIG SET masterauth "+pw, secret.New(pw)); err != nil {
				t.Fatal(err)
			}
			n.Check(pw)
		},
		"apply-command": func(t *testing.T, n *hostiletest.Node, pw string) {
			spec, _ := json.Marshal(map[string]any{"cmd": "sh -s", "stdin": "redisq -h 127.0.0.1 -p 31415 PING\n", "prelude": PreludeName})
			r := &modules.Resource{ID: "command:x", Kind: "command", Spec: spec}
			m, _ := modules.Lookup("command")
			c, err := m.Diff(r, &modules.Fact{Node: &modules.NodeFacts{}}, &modules.Env{Secret: secret.New(pw)})
			if err != nil || c == nil {
				t.Fatalf("diff: %v %v", c, err)
			}
			if err := c.Apply(ctx, n); err != nil {
				t.Fatal(err)
			}
			n.Check(pw)
		},
	} {
		t.Run(name, func(t *testing.T) { hostiletest.Each(t, PATH, f) })
	}
}
