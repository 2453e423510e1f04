package hsts

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
	"hastack.dev/hastack/modules/redis"
)

// cluster is one apply's rollout of an HSTS cluster: what the gates and
// the switchover need beyond the plan.
type cluster struct {
	sys     *system
	plan    *engine.Plan
	primary string // the live primary the plan was made for
	hosts   map[string]host.Host
	ips     map[string]string // node → private IP, of every node (a majority is of them all)
	secret  secret.Secret
	gate    time.Duration

	mu       sync.Mutex
	switched map[string]string // old primary → the node it handed over to, this run
}

func newRollout(c *Cluster, p *engine.Plan, primary string, hosts map[string]host.Host, sec secret.Secret) *cluster {
	r := &cluster{sys: &system{c: c}, plan: p, primary: primary, hosts: hosts, ips: map[string]string{}, secret: sec,
		gate: time.Duration(c.GateTimeoutS) * time.Second}
	for _, n := range c.Nodes {
		r.ips[n.Name] = n.IP
	}
	return r
}

// Order puts the primary last in a replicas-first phase.
func (c *cluster) Order(ph engine.Phase, nodes []string) []string {
	if ph.Order != "replicas-first" {
		return nodes
	}
	var out, last []string
	for _, n := range nodes {
		if n == c.primary {
			last = append(last, n)
		} else {
			out = append(out, n)
		}
	}
	return append(out, last...)
}

// Before moves the primary away from node when its Redis is about to
// restart (a planned switchover instead of a failure).
func (c *cluster) Before(ctx context.Context, node string, phase int, changes []*engine.ResourceChange, report func(engine.Event)) error {
	ph := c.plan.Phases[phase]
	if ph.Failover == "" {
		return nil
	}
	touches := false
	for _, ch := range changes {
		if ch.ID == "service:"+ph.Failover && (ch.Action == modules.Restart || ch.Action == modules.Stop) {
			touches = true
		}
	}
	if !touches {
		return nil
	}
	switch c.primaryOf(c.views(ctx, c.hosts)) {
	case "":
		return fmt.Errorf("%s: no majority of Sentinels names a primary now; not restarting its Redis", node)
	case node:
	default:
		return nil
	}
	start := time.Now()
	// Once started, the switchover runs to its end even on Ctrl-C: stopping
	// between the write pause and the failover would leave writes paused.
	to, err := c.failoverFrom(context.WithoutCancel(ctx), c.hosts, node)
	if err == nil {
		c.handedOver(node, to)
	}
	ev := &engine.ResourceChange{ID: "failover", Kind: "cluster", Phase: phase, Change: &modules.Change{Action: modules.Run,
		Summary: fmt.Sprintf("SENTINEL FAILOVER: %s hands the primary role over before its Redis restarts", node)}}
	if err == nil {
		ev.Summary += " (now " + to + ")"
	}
	report(engine.Event{Node: node, Change: ev, Err: err, Duration: time.Since(start)})
	return err
}

// After makes an old primary rejoin as a replica, then waits for the
// cluster to be healthy again when the phase is gated.
func (c *cluster) After(ctx context.Context, node string, phase int, changes []*engine.ResourceChange, report func(engine.Event)) error {
	ph := c.plan.Phases[phase]
	if to := c.handedOverTo(node); to != "" {
		// The old primary restarted from a file with no replicaof: it says
		// role:master until Sentinel converts it, some 10-20 s later (a
		// second primary for clients that trust role:master, as HAProxy's
		// check does). Make it a replica now, as Sentinel would, and
		// persist that; after the restart its running config is its file,
		// so CONFIG REWRITE adds only replicaof.
		start := time.Now()
		err := c.rejoin(context.WithoutCancel(ctx), c.hosts[node], node, to)
		report(engine.Event{Node: node, Change: &engine.ResourceChange{ID: "rejoin", Kind: "cluster", Phase: phase,
			Change: &modules.Change{Action: modules.Run, Summary: "REPLICAOF " + to + " and CONFIG REWRITE: the old primary rejoins as a replica"}},
			Err: err, Duration: time.Since(start)})
		if err != nil {
			return err
		}
	}
	if ph.Gate {
		start := time.Now()
		err := c.waitHealthy(ctx, c.hosts, node)
		report(engine.Event{Node: node, Change: &engine.ResourceChange{ID: "health-gate", Kind: "cluster", Phase: phase,
			Change: &modules.Change{Action: modules.Run, Summary: "wait until the cluster is healthy"}}, Err: err, Duration: time.Since(start)})
		if err != nil {
			return err
		}
	}
	return nil
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
	script := secret.Fill([]byte(redis.Prelude+fmt.Sprintf(`r=$(redisq -h %[1]s -p %[2]d ROLE)
case "$r" in master*) ;; *) echo OK; exit 0 ;; esac
a=$(redisq -h %[1]s -p %[2]d REPLICAOF %[3]s %[2]d)
b=$(redisq -h %[1]s -p %[2]d CONFIG REWRITE)
echo "$a" "$b"
`, c.ips[node], c.sys.c.RedisPort, c.ips[to])), c.secret)
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
	script, boundary, err := modules.FactScript(nil, c.sys.needs(ip))
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
	sv, rv := c.sys.answers(nf, ip)
	return view{Topology: topologyOf(sv, rv), quorumOK: sv.QuorumOK, replicas: sv.ReplicaHealth}
}

// primaryOf returns the node a majority of all the cluster's Sentinels
// name, or "" (the one vote: Tally).
func (c *cluster) primaryOf(vs map[string]view) string {
	tops := make(map[string]Topology, len(vs))
	for name, v := range vs {
		tops[name] = v.Topology
	}
	addr := Tally(c.sys.c.nodeNames(), tops).Majority(len(c.ips))
	if addr == "" {
		return ""
	}
	return c.sys.c.nodeAt(addr)
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
	case v.SentinelPrimary != c.ips[p]+" "+fmt.Sprint(c.sys.c.RedisPort):
		bad = append(bad, fmt.Sprintf("its Sentinel names %q, the majority %s", v.SentinelPrimary, p))
	case !v.quorumOK:
		bad = append(bad, "SENTINEL CKQUORUM fails")
	}
	if node != p {
		switch {
		case !v.RedisUp:
			bad = append(bad, "its Redis does not answer")
		case v.RedisRole != "slave" || v.RedisPrimary != c.ips[p]+" "+fmt.Sprint(c.sys.c.RedisPort):
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
	script := secret.Fill([]byte(redis.Prelude+fmt.Sprintf(`redisq -h %[1]s -p %[2]d CLIENT PAUSE %[5]d WRITE >/dev/null
out=$(redisq -h %[1]s -p %[3]d SENTINEL FAILOVER %[4]s)
[ "$out" = OK ] || redisq -h %[1]s -p %[2]d CLIENT UNPAUSE >/dev/null
printf '%%s\n' "$out"
`, c.ips[node], c.sys.c.RedisPort, c.sys.c.SentinelPort, modules.Quote(c.sys.c.PrimarySet), c.gate.Milliseconds())), c.secret)
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
