package engine

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// cluster is what apply needs to know about the cluster beyond the plan.
type cluster struct {
	tp     topoParams
	ips    map[string]string // node → private IP
	secret secret.Secret
	gate   time.Duration

	mu       sync.Mutex
	switched map[string]string // old primary → the node it handed over to, this run
}

func (c *cluster) handedOver(from, to string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.switched == nil {
		c.switched = map[string]string{}
	}
	c.switched[from] = to
}

func (c *cluster) handedOverTo(from string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.switched[from]
}

// rejoin makes node a replica of to, if it still says it is a primary.
func (c *cluster) rejoin(ctx context.Context, h host.Host, node, to string) error {
	script := secret.Fill([]byte(modules.RedisPrelude+fmt.Sprintf(`r=$(redisq -h %[1]s -p %[2]d ROLE)
case "$r" in master*) ;; *) echo OK; exit 0 ;; esac
a=$(redisq -h %[1]s -p %[2]d REPLICAOF %[3]s %[2]d)
b=$(redisq -h %[1]s -p %[2]d CONFIG REWRITE)
echo "$a" "$b"
`, c.ips[node], c.tp.RedisPort, c.ips[to])), c.secret)
	res, err := h.Run(ctx, "sh -s", bytes.NewReader(script))
	if err != nil {
		return err
	}
	if out := strings.TrimSpace(string(res.Stdout)); out != "OK" && out != "OK OK" {
		return fmt.Errorf("making %s a replica of %s: %s", node, to, out)
	}
	return nil
}

// view is one node's answer during a rollout.
type view struct {
	Topology
	quorumOK bool
	replicas map[string]string // this Sentinel's view: replica IP → "flags link-status"
	err      error
}

// views asks every node, in parallel, what its Sentinel and Redis say: the
// fact script with only the Sentinel and Redis sections.
func (c *cluster) views(ctx context.Context, hosts map[string]host.Host) map[string]view {
	out := map[string]view{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := c.view(ctx, h, name)
			mu.Lock()
			out[name] = v
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (c *cluster) view(ctx context.Context, h host.Host, name string) view {
	ip := c.ips[name]
	script, boundary, err := modules.FactScript(nil, modules.Needs{
		Sentinel: &modules.SentinelAt{Addr: fmt.Sprintf("%s %d", ip, c.tp.SentinelPort), Set: c.tp.PrimarySet},
		Redis:    fmt.Sprintf("%s %d", ip, c.tp.RedisPort),
	})
	if err != nil {
		return view{err: err}
	}
	res, err := h.Run(ctx, "sh -s", bytes.NewReader(secret.Fill([]byte(script), c.secret)))
	if err != nil {
		return view{err: err}
	}
	nf, _, err := modules.ParseFacts(res.Stdout, boundary, nil)
	if err != nil {
		return view{err: err}
	}
	return view{Topology: topologyOf(nf), quorumOK: nf.Sentinel.QuorumOK, replicas: nf.Sentinel.ReplicaHealth}
}

// primaryOf returns the node a majority of Sentinels name, or "".
func (c *cluster) primaryOf(vs map[string]view) string {
	votes := map[string]int{}
	for _, v := range vs {
		if v.SentinelUp && v.SentinelPrimary != "" {
			votes[v.SentinelPrimary]++
		}
	}
	for addr, n := range votes {
		if n > len(c.ips)/2 {
			ip, _, _ := strings.Cut(addr, " ")
			for name, nip := range c.ips {
				if nip == ip {
					return name
				}
			}
		}
	}
	return ""
}

// healthyAfter says what is wrong once node has been changed, or nil: a
// majority of Sentinels agree on a primary that says role:master, and node
// itself is in order (its Sentinel agrees and passes CKQUORUM; its Redis is
// that primary, or a replica of it with the link up).
func (c *cluster) healthyAfter(vs map[string]view, node string) error {
	p := c.primaryOf(vs)
	if p == "" {
		return fmt.Errorf("no majority of Sentinels names a primary")
	}
	if vs[p].RedisRole != "master" {
		return fmt.Errorf("the Sentinels name %s, but its Redis does not say role:master", p)
	}
	v := vs[node]
	var bad []string
	switch {
	case v.err != nil:
		bad = append(bad, v.err.Error())
	case !v.SentinelUp:
		bad = append(bad, "its Sentinel does not answer")
	case v.SentinelPrimary != c.ips[p]+" "+fmt.Sprint(c.tp.RedisPort):
		bad = append(bad, fmt.Sprintf("its Sentinel names %q, the majority %s", v.SentinelPrimary, p))
	case !v.quorumOK:
		bad = append(bad, "SENTINEL CKQUORUM fails")
	}
	if node != p {
		switch {
		case !v.RedisUp:
			bad = append(bad, "its Redis does not answer")
		case v.RedisRole != "slave" || v.RedisPrimary != c.ips[p]+" "+fmt.Sprint(c.tp.RedisPort):
			bad = append(bad, fmt.Sprintf("its Redis is %s of %q, not a replica of %s", v.RedisRole, v.RedisPrimary, p))
		case !v.RedisLinkUp:
			bad = append(bad, "its replication link is down")
		}
		// Sentinel must see it as a sound replica too, or it could not
		// promote it (NOGOODSLAVE).
		for name, w := range vs {
			if w.SentinelUp && w.replicas != nil && w.replicas[c.ips[node]] != "slave ok" {
				bad = append(bad, fmt.Sprintf("%s's Sentinel sees it as %q", name, w.replicas[c.ips[node]]))
				break
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s: %s", node, strings.Join(bad, "; "))
	}
	return nil
}

// waitHealthy polls until healthyAfter(node) holds or the gate times out.
func (c *cluster) waitHealthy(ctx context.Context, hosts map[string]host.Host, node string) error {
	deadline := time.Now().Add(c.gate)
	for {
		err := c.healthyAfter(c.views(ctx, hosts), node)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("health gate after %s (waited %s): %w", node, c.gate, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// failoverFrom moves the primary away from node with SENTINEL FAILOVER and
// waits until a majority names another node whose Redis says role:master.
//
// Writes to node are paused first (CLIENT PAUSE WRITE): Sentinel promotes
// a replica before clients learn of it, and the old primary would go on
// acknowledging writes that are lost when it becomes a replica (about a
// second of writes in the lab, see docs/operations.md). Paused, those
// clients wait and then fail (the restart that follows closes their
// connections) instead. The pause is lifted when the failover is refused,
// and bounded by the gate's timeout.
func (c *cluster) failoverFrom(ctx context.Context, hosts map[string]host.Host, node string) (string, error) {
	script := secret.Fill([]byte(modules.RedisPrelude+fmt.Sprintf(`redisq -h %[1]s -p %[2]d CLIENT PAUSE %[5]d WRITE >/dev/null
out=$(redisq -h %[1]s -p %[3]d SENTINEL FAILOVER %[4]s)
[ "$out" = OK ] || redisq -h %[1]s -p %[2]d CLIENT UNPAUSE >/dev/null
printf '%%s\n' "$out"
`, c.ips[node], c.tp.RedisPort, c.tp.SentinelPort, modules.Quote(c.tp.PrimarySet), c.gate.Milliseconds())), c.secret)
	// Sentinel refuses while it does not yet trust a replica (NOGOODSLAVE,
	// for a few seconds after replicas restarted): try again until the gate.
	deadline := time.Now().Add(c.gate)
	for {
		res, err := hosts[node].Run(ctx, "sh -s", bytes.NewReader(script))
		if err != nil {
			return "", err
		}
		out := strings.TrimSpace(string(res.Stdout))
		if out == "OK" {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("SENTINEL FAILOVER on %s: %q", node, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for {
		vs := c.views(ctx, hosts)
		if p := c.primaryOf(vs); p != "" && p != node && vs[p].RedisRole == "master" {
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("the failover away from %s did not finish within %s", node, c.gate)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
