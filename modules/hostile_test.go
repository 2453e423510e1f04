package modules

import (
	"context"
	"os"
	"path/filepath"
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

// A command's stdin carries the password through the real /bin/sh with
// passwords a shell takes for code: it arrives byte for byte, and nothing
// in it runs (modules/redis tests the scripts that talk to a server).
func TestHostilePasswordScripts(t *testing.T) {
	ctx := context.Background()
	hostiletest.Each(t, NodePATH, func(t *testing.T, n *hostiletest.Node, pw string) {
		got := filepath.Join(n.Dir, "stdin")
		r := resource(t, "command", "command:x", map[string]any{"cmd": "cat > " + Quote(got), "stdin": secret.Placeholder})
		c, err := commandModule{}.Diff(r, &Fact{Node: &NodeFacts{}}, &Env{Secret: secret.New(pw)})
		if err != nil || c == nil {
			t.Fatalf("diff: %v %v", c, err)
		}
		if err := c.Apply(ctx, n); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(n.Mark); err == nil {
			t.Errorf("a password ran as shell code: %s exists", n.Mark)
		}
		if b, _ := os.ReadFile(got); string(b) != pw {
			t.Errorf("the command's stdin was %q, want the password", b)
		}
	})
}
