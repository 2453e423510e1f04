package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// debugExtra turns DEBUG on for the failover drill (003 step 12).
const debugExtra = `redis: debugCommand: "yes"`

// TestThreeNodes is issue 4's main proof on three fresh nodes: apply, an
// empty second plan, check, both drills, the firewall seen from inside and
// outside, no change after a failover, and check failing on a dead
// Sentinel or Redis.
func TestThreeNodes(t *testing.T) {
	t.Parallel()
	suite := time.Now()
	c := newCluster(t, 3, debugExtra)

	c.must(0, "apply", "-auto-approve")
	if out := c.must(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
		t.Fatal("the plan after apply is not empty")
	}
	// Sentinels discover each other over a few seconds after the start.
	c.must(0, "check", "-wait", "30s")
	out := c.must(0, "check", "-replication")
	if !strings.Contains(out, "no longer lists") {
		t.Fatal("check -replication did not report the delete round")
	}

	t.Run("firewall", func(t *testing.T) { firewallHolds(t, c.in(t)) })

	d := c.failover()
	t.Logf("3 nodes: the cluster had no primary for %s (down-after 300 ms, failover-timeout 1000 ms)", d)
	newPrimary := c.primary("node2")
	if newPrimary == "node1" {
		t.Fatal("the Sentinels still name node1 after the drill")
	}

	// After a failover nothing is planned, and apply moves nothing back
	// nor touches the Sentinels' runtime lines.
	before := c.sentinelConfs()
	if out := c.must(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
		t.Fatal("the plan after the failover is not empty")
	}
	c.must(0, "apply", "-auto-approve")
	if p := c.primary("node3"); p != newPrimary {
		t.Fatalf("apply moved the primary from %s to %s", newPrimary, p)
	}
	after := c.sentinelConfs()
	for node, b := range before {
		if after[node] != b {
			t.Errorf("%s: apply changed sentinel_41415.conf:\nbefore:\n%s\nafter:\n%s", node, b, after[node])
		}
	}
	if !strings.Contains(before["node1"], "sentinel known-sentinel") {
		t.Errorf("node1's sentinel conf has no known-sentinel line: the comparison proves little:\n%s", before["node1"])
	}

	t.Run("dead sentinel", func(t *testing.T) { deadService(t, c.in(t), "node3", "asperaredissentinel", "sentinel") })
	replica := "node1" // the old primary, a replica now
	t.Run("dead redis", func(t *testing.T) { deadService(t, c.in(t), replica, "asperaredisd", "redis") })
	t.Logf("TestThreeNodes took %.1fs", time.Since(suite).Seconds())
}

// TestFiveNodes: the same cluster on five nodes with quorum 3.
func TestFiveNodes(t *testing.T) {
	t.Parallel()
	suite := time.Now()
	c := newCluster(t, 5, debugExtra+"\nsentinel: quorum: 3")
	c.must(0, "apply", "-auto-approve")
	out := c.must(0, "check", "-wait", "30s")
	if !strings.Contains(out, "OK 5 usable Sentinels. Quorum and failover authorization can be reached") {
		t.Error("CKQUORUM does not report 5 usable Sentinels")
	}
	d := c.failover()
	t.Logf("5 nodes: the cluster had no primary for %s (down-after 300 ms, failover-timeout 1000 ms)", d)
	t.Logf("TestFiveNodes took %.1fs", time.Since(suite).Seconds())
}

// firewallHolds: the Redis and Sentinel ports refuse the controller and
// accept the other cluster nodes.
func firewallHolds(t *testing.T, c *cluster) {
	for i, n := range c.lab.Nodes {
		from := c.lab.Nodes[(i+1)%len(c.lab.Nodes)].Name
		for _, port := range []int{31415, 41415} {
			probe := []string{"timeout", "3", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", n.IP, port)}
			out, err := c.lab.ExecController(t.Context(), probe...)
			if err == nil {
				t.Errorf("the controller reached %s's port %d", n.Name, port)
			} else {
				t.Logf("controller → %s:%d refused: %s", n.Name, port, strings.TrimSpace(string(out)))
			}
			if _, err := c.exec(from, probe...); err != nil {
				t.Errorf("%s cannot reach %s's port %d: %v", from, n.Name, port, err)
			}
		}
	}
}

// sentinelConfs reads every node's sentinel_41415.conf.
func (c *cluster) sentinelConfs() map[string]string {
	c.t.Helper()
	m := map[string]string{}
	for _, n := range c.lab.Nodes {
		out, err := c.exec(n.Name, "cat", "/opt/aspera/etc/redis/sentinel_41415.conf")
		if err != nil {
			c.t.Fatal(err)
		}
		m[n.Name] = out
	}
	return m
}

// deadService stops unit on node, expects check to fail naming the node
// and what, then starts the unit again and expects check to pass.
func deadService(t *testing.T, c *cluster, node, unit, what string) {
	if _, err := c.exec(node, "systemctl", "stop", unit); err != nil {
		t.Fatal(err)
	}
	code, out := c.hastack("check")
	if code != 1 {
		t.Errorf("check exited %d with %s's %s stopped, want 1", code, node, what)
	}
	re := regexp.MustCompile(`(?m)^FAIL\s+` + node + `\s+` + what + `: `)
	if !re.MatchString(out) {
		t.Errorf("check does not fail naming %s and %s", node, what)
	}
	if _, err := c.exec(node, "systemctl", "start", unit); err != nil {
		t.Fatal(err)
	}
	c.must(0, "check", "-wait", "30s")
}
