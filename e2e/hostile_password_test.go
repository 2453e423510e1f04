package e2e

import (
	"strings"
	"testing"
)

// hostilePassword passes secret.Check and is shell code wherever a script
// leaves it unquoted: each way it could run creates a marker file.
const hostilePassword = "Pw1;touch${IFS}/tmp/hastack-e2e-pwned1&x|y$(touch${IFS}/tmp/hastack-e2e-pwned2)`touch${IFS}/tmp/hastack-e2e-pwned3`<a>!$$"

// TestHostilePassword is issue 8 finding 1 on real sshd, Redis and
// Sentinel: a cluster applied with a password full of shell syntax
// converges (the next plan is empty), passes check and both drills, Redis
// takes the password byte for byte, and no node ran any of it.
func TestHostilePassword(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, debugExtra)
	env := map[string]string{"HASTACK_REDIS_PASSWORD": hostilePassword}
	run := func(want int, args ...string) string {
		t.Helper()
		code, out := runHastack(t, c.lab.Dir, c.dir, env, args...)
		if code != want {
			t.Fatalf("hastack %s exited %d, want %d", strings.Join(args, " "), code, want)
		}
		return out
	}
	for _, n := range c.lab.Nodes { // a marker of an earlier run proves nothing
		c.exec(n.Name, "sh", "-c", "rm -f /tmp/hastack-e2e-pwned*")
	}
	run(0, "apply", "-auto-approve")
	if out := run(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
		t.Fatal("the plan after apply is not empty")
	}
	run(0, "check", "-wait", "30s")
	run(0, "check", "-failover")
	run(0, "check", "-replication")
	for _, n := range c.lab.Nodes {
		out, err := c.exec(n.Name, "env", "REDISCLI_AUTH="+hostilePassword, "redis-cli", "--no-auth-warning", "-h", n.IP, "-p", "31415", "PING")
		if err != nil || strings.TrimSpace(out) != "PONG" {
			t.Errorf("%s: Redis does not take the password as written: %v %s", n.Name, err, out)
		}
		if out, _ := c.exec(n.Name, "sh", "-c", "ls /tmp/hastack-e2e-pwned* 2>/dev/null; true"); strings.TrimSpace(out) != "" {
			t.Errorf("%s: the password ran as shell code: %s", n.Name, out)
		}
	}
}
