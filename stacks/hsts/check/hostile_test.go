package check

import (
	"context"
	"testing"
	"time"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/hostiletest"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules/redis"
)

// Every script of check and of the failover drill, run through the real
// /bin/sh with passwords a shell takes for code: the Redis CLI gets the
// password byte for byte, and nothing in it runs (issue 8 finding 1).
func TestHostilePasswordCheckScripts(t *testing.T) {
	ctx := context.Background()
	hostiletest.Each(t, redis.PATH, func(t *testing.T, n *hostiletest.Node, pw string) {
		cl := testCluster()
		cl.Design = "haproxy"
		hosts := map[string]host.Host{}
		for _, nd := range cl.Nodes {
			hosts[nd.Name] = n
		}
		c := &Checker{Cluster: cl, Hosts: hosts, Secret: secret.New(pw)}
		c.Health(ctx)
		b := newBoundary()
		for _, script := range []string{debugProbeScript(b, ips[0], cl.RedisPort), debugSleepScript(b, ips[0], cl.RedisPort, 0)} {
			if _, err := c.run(ctx, "node1", script); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.watchPromotion(ctx, "node2", ips[0], time.Second); err != nil {
			t.Errorf("watchPromotion: %v", err)
		}
		if _, err := c.waitRejoin(ctx, "node1", "node2", ips[0], time.Second); err != nil {
			t.Errorf("waitRejoin: %v", err)
		}
		n.Check(pw)
		if len(n.Auths()) < 10 {
			t.Errorf("only %d Redis CLI calls: a script did not reach the CLI", len(n.Auths()))
		}
	})
}
