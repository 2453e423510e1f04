package hsts

import (
	"context"
	"encoding/json"
	"fmt"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
	_ "hastack.dev/hastack/modules/aspera" // the stack's asconf resources
	"hastack.dev/hastack/modules/redis"
)

type driver struct{}

// Open decodes the cluster's HSTS settings.
func (driver) Open(cl *config.Cluster) (engine.System, error) {
	c, err := Decode(cl)
	if err != nil {
		return nil, err
	}
	return &system{c: c}, nil
}

// system is one opened HSTS cluster.
type system struct {
	c *Cluster
}

// Live is what a plan saves of the cluster's state: its JSON keys are the
// plan's "design" and "primary" (docs/plan.md).
type Live struct {
	Design  string  `json:"design"`
	Primary Primary `json:"primary"`
}

// Orders are the node orders a phase may name.
func (s *system) Orders() []string { return []string{"primary-first", "replicas-first"} }

// Guess is the common case: a running cluster whose primary is the
// configured one, every Redis up.
func (s *system) Guess() map[string]any {
	up := map[string]bool{}
	for _, n := range s.c.Nodes {
		up[n.Name] = true
	}
	return Inputs(s.c.Primary, up, true, s.c.PreviousSecret != nil)
}

// Needs are the node's own Sentinel and Redis; a load balancer's, the
// addresses it holds (frontend.go).
func (s *system) Needs(n engine.NodeSpec) modules.Needs {
	if s.c.IsLoadBalancer(n.Name) {
		return s.frontendNeeds()
	}
	return s.needs(n.IP)
}

func (s *system) needs(ip string) modules.Needs {
	return modules.Needs{Shared: redis.Needs(s.sentinelAt(ip), s.redisAt(ip))}
}

// sentinelAt is the node's own Sentinel, asked about the cluster's set.
func (s *system) sentinelAt(ip string) *redis.SentinelAt {
	return &redis.SentinelAt{Addr: fmt.Sprintf("%s %d", ip, s.c.SentinelPort), Set: s.c.PrimarySet}
}

// redisAt is the node's own Redis, "ip port".
func (s *system) redisAt(ip string) string { return fmt.Sprintf("%s %d", ip, s.c.RedisPort) }

// answers are what the Sentinel and Redis of the node at ip said in nf.
func (s *system) answers(nf *modules.NodeFacts, ip string) (redis.SentinelView, redis.RedisView) {
	return redis.Sentinel(nf, *s.sentinelAt(ip)), redis.Info(nf, s.redisAt(ip))
}

// Observe finds the live primary and the nodes whose Redis runs.
func (s *system) Observe(facts map[string]*engine.Facts) (engine.Observation, error) {
	tops := map[string]Topology{}
	for name, f := range facts {
		if !s.c.IsLoadBalancer(name) {
			tops[name] = topologyOf(s.answers(f.Shared, s.c.ipOf(name)))
		}
	}
	p, err := LivePrimary(s.c, tops)
	if err != nil {
		return engine.Observation{}, err
	}
	up := map[string]bool{}
	state := map[string]string{}
	for name, t := range tops {
		up[name] = t.RedisUp
		b, _ := json.Marshal([2]string{t.RedisRole, t.RedisPrimary})
		state[name] = string(b)
	}
	live, _ := json.Marshal(Live{Design: s.c.Design, Primary: p})
	obs := engine.Observation{
		Inputs:    withUnreached(Inputs(p.Node, up, p.Source == "sentinels", s.c.PreviousSecret != nil), s.c, facts),
		Live:      live,
		Summary:   summary(s.c.Design, p),
		NodeState: state,
	}
	if p.Note != "" {
		obs.Notes = []string{p.Note}
	}
	s.observeFrontend(facts, &obs)
	return obs, nil
}

// summary is the plan header after "Cluster NAME".
func summary(design string, p Primary) string {
	s := fmt.Sprintf(" (design %s): primary %s", design, p.Node)
	if p.Source == "sentinels" {
		s += fmt.Sprintf(" (named by %d Sentinels)", p.Answers)
	}
	return s
}

// Stale says the primary moved since a saved plan was made: the rest of
// Live (how many Sentinels answered) may change without changing the plan.
func (s *system) Stale(saved, fresh json.RawMessage) string {
	var a, b Live
	json.Unmarshal(saved, &a)
	json.Unmarshal(fresh, &b)
	if a.Primary.Node != b.Primary.Node {
		return fmt.Sprintf("the primary moved from %s to %s", a.Primary.Node, b.Primary.Node)
	}
	return ""
}

// Rollout keeps the cluster up while p is applied.
func (s *system) Rollout(p *engine.Plan, hosts map[string]host.Host, sec secret.Secret) engine.Rollout {
	var live Live
	json.Unmarshal(p.Live, &live)
	return newRollout(s.c, p, live.Primary.Node, hosts, sec)
}

// checkFunc is the check of package hsts/check, which registers it: the
// check imports this package (the vote, the settings), not the reverse.
var checkFunc func(ctx context.Context, c *Cluster, req engine.CheckRequest) bool

// RegisterCheck is called by package hsts/check.
func RegisterCheck(f func(ctx context.Context, c *Cluster, req engine.CheckRequest) bool) {
	checkFunc = f
}

// Check verifies the running cluster (hastack check).
func (s *system) Check(ctx context.Context, req engine.CheckRequest) bool {
	if checkFunc == nil {
		fmt.Fprintf(req.Out, "cluster %s: this hastack was built without the HSTS check\n", s.c.Name)
		return false
	}
	return checkFunc(ctx, s.c, req)
}
