package modules

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hastack.dev/hastack/internal/hostiletest"
	"hastack.dev/hastack/internal/secret"
)

// SecretVar's single quotes hold only because secret.Check refuses the one
// character they cannot carry (and a newline, which ends the line). Were
// Check ever to allow either, a password could end the quote.
func TestSecretVarInvariant(t *testing.T) {
	for _, p := range []string{"Passw0rd'x", "Passw0rd\nx"} {
		if secret.Check(p) == nil {
			t.Errorf("secret.Check allows %q: SecretVar's single quotes would no longer hold it", p)
		}
	}
	for _, p := range hostiletest.Passwords {
		if err := secret.Check(p); err != nil {
			t.Errorf("test password %q is refused (%v): it proves nothing", p, err)
		}
	}
	for _, ph := range []string{secret.Placeholder, secret.PreviousPlaceholder} {
		if got, want := SecretVar("V", ph), "V='"+ph+"'\n"; got != want {
			t.Errorf("SecretVar = %q, want %q", got, want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("SecretVar took a value that is not a placeholder")
		}
	}()
	SecretVar("V", "plain")
}

// Every Go-side script of modules that carries the password, run through
// the real /bin/sh with passwords a shell takes for code: the Redis CLI gets
// the password byte for byte, and nothing in it runs.
func TestHostilePasswordScripts(t *testing.T) {
	ctx := context.Background()
	for _, raw := range hostiletest.Passwords {
		t.Run(raw, func(t *testing.T) {
			t.Run("facts", func(t *testing.T) {
				n := hostiletest.New(t, NodePATH)
				pw := n.Password(raw)
				script, _, err := FactScript(nil, Needs{Sentinel: &SentinelAt{Addr: "127.0.0.1 41415", Set: "myprimary"}, Redis: "127.0.0.1 31415"})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := n.Run(ctx, "sh -s", strings.NewReader(string(secret.Fill([]byte(script), secret.New(pw))))); err != nil {
					t.Fatal(err)
				}
				n.Check(pw)
			})
			t.Run("rotation-fallback", func(t *testing.T) {
				n := hostiletest.New(t, NodePATH)
				pw, old := n.Password(raw), n.Password(raw)+"-old"
				n.Reject(pw) // the server knows only the previous password
				if _, err := runRedis(ctx, n, "redisq -h 127.0.0.1 -p 31415 PING\n", secret.New(pw).WithPrevious(secret.New(old))); err != nil {
					t.Fatal(err)
				}
				n.Check(pw, old)
				if a := n.Auths(); len(a) != 2 || a[1] != old {
					t.Errorf("the fallback did not use the previous password: %q", a)
				}
			})
			t.Run("apply-live-set", func(t *testing.T) {
				n := hostiletest.New(t, NodePATH)
				pw := n.Password(raw)
				if err := liveSet(ctx, n, "redis", "127.0.0.1 31415", "CONFIG SET masterauth "+pw, secret.New(pw)); err != nil {
					t.Fatal(err)
				}
				n.Check(pw)
			})
			t.Run("apply-command", func(t *testing.T) {
				n := hostiletest.New(t, NodePATH)
				pw := n.Password(raw)
				got := filepath.Join(n.Dir, "stdin")
				for _, spec := range []map[string]any{
					{"cmd": "sh -s", "stdin": "redisq -h 127.0.0.1 -p 31415 PING\n", "redis": true},
					{"cmd": "cat > " + Quote(got), "stdin": secret.Placeholder},
				} {
					r := resource(t, "command", "command:x", spec)
					c, err := commandModule{}.Diff(r, &Fact{Node: &NodeFacts{}}, &Env{Secret: secret.New(pw)})
					if err != nil || c == nil {
						t.Fatalf("diff: %v %v", c, err)
					}
					if err := c.Apply(ctx, n); err != nil {
						t.Fatal(err)
					}
				}
				n.Check(pw)
				if b, _ := os.ReadFile(got); string(b) != pw {
					t.Errorf("the command's stdin was %q, want the password", b)
				}
			})
		})
	}
}
