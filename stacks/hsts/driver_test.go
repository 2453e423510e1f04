package hsts

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
	"hastack.dev/hastack/modules/redis"
)

var zeroSecret secret.Secret

func threeNodes() *Cluster {
	c := &Cluster{Cluster: &config.Cluster{Name: "t"}, Design: "sentinel", Primary: "n1", PrimarySet: "p", RedisPort: 6379, SentinelPort: 26379}
	for i, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		c.Nodes = append(c.Nodes, config.Node{Name: "n" + string(rune('1'+i)), IP: ip})
	}
	return c
}

func up(primary string) Topology {
	return Topology{SentinelState: "up", RedisState: "up", SentinelUp: true, SentinelPrimary: primary, RedisUp: true, RedisRole: "slave"}
}

// The live primary is what the Sentinels name; none: the bootstrap one;
// disagreeing ones or a refused password: no plan.
func TestLivePrimary(t *testing.T) {
	c := threeNodes()
	p, err := LivePrimary(c, map[string]Topology{"n1": up("10.0.0.2 6379"), "n2": up("10.0.0.2 6379"), "n3": up("10.0.0.2 6379")})
	if err != nil || p.Node != "n2" || p.Source != "sentinels" || p.Answers != 3 || p.Note != "" {
		t.Errorf("agreeing Sentinels: %+v %v", p, err)
	}
	p, err = LivePrimary(c, map[string]Topology{"n1": up("10.0.0.2 6379"), "n2": {SentinelState: "down"}, "n3": {SentinelState: "down"}})
	if err != nil || p.Node != "n2" || !strings.Contains(p.Note, "only 1 of 3 Sentinels answered") {
		t.Errorf("one Sentinel: %+v %v", p, err)
	}
	p, err = LivePrimary(c, map[string]Topology{"n1": {SentinelState: "down"}})
	if err != nil || p.Node != "n1" || p.Source != "bootstrap" {
		t.Errorf("no Sentinel: %+v %v", p, err)
	}
	if _, err := LivePrimary(c, map[string]Topology{"n1": up("10.0.0.2 6379"), "n3": up("10.0.0.3 6379")}); err == nil || !strings.Contains(err.Error(), "disagree") {
		t.Errorf("disagreeing Sentinels: %v", err)
	}
	if _, err := LivePrimary(c, map[string]Topology{"n2": {SentinelState: "auth-failed"}}); err == nil || !strings.Contains(err.Error(), "node n2: its Sentinel refuses") {
		t.Errorf("refused password: %v", err)
	}
	if _, err := LivePrimary(c, map[string]Topology{"n1": {SentinelState: "down", RedisRole: "master"}, "n2": {SentinelState: "down", RedisRole: "master"}}); err == nil {
		t.Error("a primary Redis other than the bootstrap one with no Sentinel: no error")
	}
}

// The rollout's majority is of all the cluster's nodes, not of those that
// answered.
func TestRolloutMajority(t *testing.T) {
	r := newRollout(threeNodes(), &engine.Plan{}, "n1", nil, zeroSecret)
	if got := r.primaryOf(map[string]view{"n1": {Topology: up("10.0.0.2 6379")}}); got != "" {
		t.Errorf("1 of 3 Sentinels: primary %q, want none", got)
	}
	if got := r.primaryOf(map[string]view{"n1": {Topology: up("10.0.0.2 6379")}, "n3": {Topology: up("10.0.0.2 6379")}}); got != "n2" {
		t.Errorf("2 of 3 Sentinels: primary %q, want n2", got)
	}
	if got := r.Order(engine.Phase{Order: "replicas-first"}, []string{"n1", "n2", "n3"}); !slices.Equal(got, []string{"n2", "n3", "n1"}) {
		t.Errorf("replicas-first: %q", got)
	}
	if got := r.Order(engine.Phase{}, []string{"n1", "n2", "n3"}); !slices.Equal(got, []string{"n1", "n2", "n3"}) {
		t.Errorf("plan order: %q", got)
	}
}

// The plan header, the JSON keys and the stale message are as before the
// driver existed.
func TestObservation(t *testing.T) {
	s := &system{c: threeNodes()}
	facts := map[string]*engine.Facts{}
	for _, n := range []string{"n1", "n2", "n3"} {
		nf := &modules.NodeFacts{}
		ip := s.c.ipOf(n)
		role := "slave"
		if n == "n1" {
			role = "master"
		}
		nf.SetSharedKey(redis.SentinelFact, redis.SentinelKey(*s.sentinelAt(ip)), redis.SentinelView{State: "up", Primary: "10.0.0.1 6379"})
		nf.SetSharedKey(redis.InfoFact, redis.InfoKey(s.redisAt(ip)), redis.RedisView{State: "up", Role: role})
		facts[n] = &engine.Facts{Node: n, Shared: nf}
	}
	obs, err := s.Observe(facts)
	if err != nil {
		t.Fatal(err)
	}
	if obs.Summary != " (design sentinel): primary n1 (named by 3 Sentinels)" {
		t.Errorf("summary %q", obs.Summary)
	}
	if string(obs.Live) != `{"design":"sentinel","primary":{"node":"n1","source":"sentinels","answers":3}}` {
		t.Errorf("live %s", obs.Live)
	}
	b, _ := json.Marshal(obs.Inputs)
	if string(b) != `{"live":true,"primary":"n1","redisUp":{"n1":true,"n2":true,"n3":true}}` {
		t.Errorf("inputs %s", b)
	}
	if g, _ := json.Marshal(s.Guess()); string(g) != string(b) {
		t.Errorf("the guess %s is not the common case %s: every plan would render twice", g, b)
	}
	moved := json.RawMessage(`{"design":"sentinel","primary":{"node":"n2","source":"sentinels","answers":2}}`)
	if why := s.Stale(moved, obs.Live); why != "the primary moved from n2 to n1" {
		t.Errorf("stale: %q", why)
	}
	fewer := json.RawMessage(`{"design":"sentinel","primary":{"node":"n1","source":"sentinels","answers":2}}`)
	if why := s.Stale(fewer, obs.Live); why != "" {
		t.Errorf("a Sentinel more answering made the plan stale: %q", why)
	}
}
