package modules

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"hastack.dev/hastack/internal/secret"
)

// A stamped command and the making of the stamps' directory are one exec;
// the stamp still goes over WriteFile.
func TestStampedCommandOneExec(t *testing.T) {
	r := resource(t, "command", "command:ks", map[string]any{"cmd": "/opt/aspera/bin/askmscli -i -u xfer", "stamp": true})
	c, err := commandModule{}.Diff(r, &Fact{Node: &NodeFacts{}}, &Env{Secret: secret.New("pw-1")})
	if err != nil || c == nil {
		t.Fatalf("change %v, error %v", c, err)
	}
	h := &recorder{}
	if err := c.Apply(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if len(h.cmds) != 1 || !strings.Contains(h.cmds[0], "askmscli -i -u xfer") || !strings.Contains(h.cmds[0], "mkdir -p "+StampDir) {
		t.Errorf("execs %q, want one with the command and the stamps' mkdir", h.cmds)
	}
	if len(h.writes) != 2 || h.writes[1].Path != stampPath("command:ks") {
		t.Errorf("writes %v, want the key and the stamp", h.writes)
	}
}

// A guard runs in a subshell of the fact script: its `exit` ends only the
// guard, and the resources after it are still read. In braces the exit
// ended the whole script, which then failed as "cut short" with no word of
// which guard did it. Run by the local sh (dash on Debian), as a node's.
func TestGuardExitEndsOnlyTheGuard(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	absent := filepath.Join(dir, "absent")
	rs := []Resource{
		*resource(t, "command", "command:exits", map[string]any{"cmd": "touch " + absent, "unless": "[ -e " + absent + " ] || exit 1"}),
		*resource(t, "command", "command:cd", map[string]any{"cmd": "true", "onlyif": "cd / && exit 0 # a trailing comment"}),
		*resource(t, "command", "command:after", map[string]any{"cmd": "true", "creates": dir}),
	}
	script, boundary, err := FactScript(rs, Needs{})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-s")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fact script: %v", err)
	}
	nf, own, err := ParseFacts(out, boundary, rs)
	if err != nil {
		t.Fatalf("facts: %v", err)
	}
	want := map[string]bool{"command:exits": true, "command:cd": true, "command:after": false}
	for i := range rs {
		c, err := commandModule{}.Diff(&rs[i], &Fact{Out: own[rs[i].ID], Node: nf}, &Env{})
		if err != nil {
			t.Fatalf("%s: %v", rs[i].ID, err)
		}
		if (c != nil) != want[rs[i].ID] {
			t.Errorf("%s: planned %v, want %v (its fact %q)", rs[i].ID, c != nil, want[rs[i].ID], own[rs[i].ID])
		}
	}
}
