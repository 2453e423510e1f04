package hsts

// The rollout's decisions without root: the health gate as a pure function
// of the nodes' answers, and Before/After (switchover, rejoin, gate) over
// nodes played from canned facts (internal/fixture).

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/internal/fixture"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/modules"
)

// replicaOf is a healthy replica's answer in a cluster whose Sentinels
// name primary.
func replicaOf(primary string) view {
	t := up(primary)
	t.RedisPrimary, t.RedisLinkUp = primary, true
	return view{Topology: t, quorumOK: true, replicas: map[string]string{"10.0.0.2": "slave ok", "10.0.0.3": "slave ok"}}
}

// healthy is n1 primary, n2 and n3 its replicas, everyone agreeing.
func healthy() map[string]view {
	p := replicaOf("10.0.0.1 6379")
	p.RedisRole, p.RedisPrimary = "master", ""
	return map[string]view{"n1": p, "n2": replicaOf("10.0.0.1 6379"), "n3": replicaOf("10.0.0.1 6379")}
}

// The gate after a node passes only when a majority of all Sentinels
// names a primary that says role:master and the node is in order: its
// Sentinel agrees and has quorum; a replica replicates from that primary
// with its link up, and no Sentinel sees it as anything but "slave ok".
func TestHealthyAfter(t *testing.T) {
	r := newRollout(threeNodes(), &engine.Plan{}, "n1", nil, zeroSecret)
	for _, tc := range []struct {
		name string
		node string
		edit func(vs map[string]view)
		want string // "" healthy, else a part of the error
	}{
		{"replica", "n2", nil, ""},
		{"primary", "n1", nil, ""},
		{"primary, its replica's link down (not its business)", "n1", func(vs map[string]view) { v := vs["n2"]; v.RedisLinkUp = false; vs["n2"] = v }, ""},
		{"no majority", "n2", func(vs map[string]view) {
			for _, n := range []string{"n1", "n2"} {
				v := vs[n]
				v.SentinelUp = false
				vs[n] = v
			}
		}, "no majority of Sentinels names a primary"},
		{"named primary is not master", "n2", func(vs map[string]view) { v := vs["n1"]; v.RedisRole = "slave"; vs["n1"] = v },
			"the Sentinels name n1, but its Redis does not say role:master"},
		{"node unreachable", "n3", func(vs map[string]view) { v := vs["n3"]; v.err = io.ErrUnexpectedEOF; vs["n3"] = v }, "n3: unexpected EOF"},
		{"node's Sentinel down", "n3", func(vs map[string]view) { v := vs["n3"]; v.SentinelUp = false; vs["n3"] = v }, "n3: its Sentinel does not answer"},
		{"node's Sentinel disagrees", "n3", func(vs map[string]view) { v := vs["n3"]; v.SentinelPrimary = "10.0.0.2 6379"; vs["n3"] = v },
			`its Sentinel names "10.0.0.2 6379", the majority n1`},
		{"no quorum", "n3", func(vs map[string]view) { v := vs["n3"]; v.quorumOK = false; vs["n3"] = v }, "SENTINEL CKQUORUM fails"},
		{"replica's Redis down", "n2", func(vs map[string]view) { v := vs["n2"]; v.RedisUp = false; vs["n2"] = v }, "its Redis does not answer"},
		{"replica of another", "n2", func(vs map[string]view) { v := vs["n2"]; v.RedisPrimary = "10.0.0.3 6379"; vs["n2"] = v },
			`its Redis is slave of "10.0.0.3 6379", not a replica of n1`},
		{"a second master", "n2", func(vs map[string]view) { v := vs["n2"]; v.RedisRole = "master"; vs["n2"] = v }, "its Redis is master of"},
		{"link down", "n2", func(vs map[string]view) { v := vs["n2"]; v.RedisLinkUp = false; vs["n2"] = v }, "n2: its replication link is down"},
		{"a Sentinel sees it down", "n2", func(vs map[string]view) {
			v := vs["n3"]
			v.replicas = map[string]string{"10.0.0.2": "slave,s_down ok"}
			vs["n3"] = v
		}, `n3's Sentinel sees it as "slave,s_down ok"`},
	} {
		vs := healthy()
		if tc.edit != nil {
			tc.edit(vs)
		}
		err := r.healthyAfter(vs, tc.node)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

// fakeLab is three nodes played by fixture hosts, whose Sentinels and Redis
// answer from files the test rewrites (setPrimary), and which carry out
// the switchover's and rejoin's scripts on those files.
type fakeLab struct {
	t       *testing.T
	dir     string
	mu      sync.Mutex
	scripts []string // "node: WHAT" of every non-fact script, in order
	refuse  string   // the answer to SENTINEL FAILOVER instead of OK
	hosts   map[string]host.Host
}

func newLab(t *testing.T, primary string) *fakeLab {
	l := &fakeLab{t: t, dir: t.TempDir(), hosts: map[string]host.Host{}}
	l.setPrimary(primary)
	for _, n := range []string{"n1", "n2", "n3"} {
		fh, err := fixture.Open(l.dir, n)
		if err != nil {
			t.Fatal(err)
		}
		l.hosts[n] = labHost{fh, l}
	}
	return l
}

var labIPs = map[string]string{"n1": "10.0.0.1", "n2": "10.0.0.2", "n3": "10.0.0.3"}

// setPrimary makes every Sentinel name p, p's Redis a master and the
// others its replicas, links up.
func (l *fakeLab) setPrimary(p string) {
	for n, ip := range labIPs {
		var sen strings.Builder
		sen.WriteString("primary " + labIPs[p] + " 6379\n")
		for m, mip := range labIPs {
			if m != n {
				sen.WriteString("sentinel " + mip + "\n")
			}
			if m != p {
				sen.WriteString("replica " + mip + " slave ok\n")
			}
		}
		sen.WriteString("quorum ok\n")
		red := "role:master\nconnected_slaves:2\n"
		if n != p {
			red = "role:slave\nmaster_host:" + labIPs[p] + "\nmaster_port:6379\nmaster_link_status:up\n"
		}
		_ = ip
		l.write(n, "sentinel", sen.String())
		l.write(n, "redis", red)
	}
}

func (l *fakeLab) write(node, name, text string) {
	p := filepath.Join(l.dir, node, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		l.t.Fatal(err)
	}
}

// labHost answers the fact script from the fixture, and plays SENTINEL
// FAILOVER (the primary moves to n2) and the rejoin.
type labHost struct {
	*fixture.Host
	l *fakeLab
}

func (h labHost) Run(ctx context.Context, cmd string, stdin io.Reader) (host.Result, error) {
	var script []byte
	if stdin != nil {
		script, _ = io.ReadAll(stdin)
	}
	l := h.l
	switch s := string(script); {
	case strings.Contains(s, "SENTINEL FAILOVER"):
		l.mu.Lock()
		l.scripts = append(l.scripts, h.Name()+": failover")
		refuse := l.refuse
		l.mu.Unlock()
		if refuse != "" {
			return host.Result{Stdout: []byte(refuse + "\n")}, nil
		}
		if !strings.Contains(s, "CLIENT PAUSE") {
			l.t.Error("the failover does not pause writes first")
		}
		l.setPrimary("n2")
		return host.Result{Stdout: []byte("OK\n")}, nil
	case strings.Contains(s, "REPLICAOF"):
		l.mu.Lock()
		l.scripts = append(l.scripts, h.Name()+": rejoin")
		l.mu.Unlock()
		if !strings.Contains(s, "REPLICAOF 10.0.0.2 6379") {
			l.t.Errorf("rejoin script names another primary:\n%s", s)
		}
		return host.Result{Stdout: []byte("OK OK\n")}, nil
	}
	return h.Host.Run(ctx, cmd, bytes.NewReader(script))
}

// restartPlan is a plan whose phase 0 restarts redis (the failover unit)
// on every node, gated.
func restartPlan(gate bool) *engine.Plan {
	p := &engine.Plan{Phases: []engine.Phase{{Name: "restart", Serial: true, Order: "replicas-first", Gate: gate, Failover: "redis"}}}
	return p
}

func restart(id string) []*engine.ResourceChange {
	return []*engine.ResourceChange{{ID: id, Kind: "service", Change: &modules.Change{Action: modules.Restart}}}
}

// events collects what the hooks report.
func collect(evs *[]string) func(engine.Event) {
	return func(e engine.Event) {
		s := e.Node + " " + e.Change.ID
		if e.Err != nil {
			s += " failed"
		}
		*evs = append(*evs, s)
	}
}

// Before hands the primary role over only when the node about to restart
// its failover unit is the primary: not for a replica, not for another
// change; After has the old primary rejoin as a replica of the new one,
// then passes the gate.
func TestRolloutSwitchover(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, "n1")
	r := newRollout(threeNodes(), restartPlan(true), "n1", l.hosts, zeroSecret)
	var evs []string
	for _, tc := range []struct {
		node    string
		changes []*engine.ResourceChange
	}{
		{"n2", restart("service:redis")},    // a replica
		{"n1", restart("service:sentinel")}, // not the failover unit
		{"n1", []*engine.ResourceChange{{ID: "service:redis", Change: &modules.Change{Action: modules.Start}}}}, // not a restart
	} {
		if err := r.Before(ctx, tc.node, 0, tc.changes, collect(&evs)); err != nil {
			t.Errorf("%s %s: %v", tc.node, tc.changes[0].ID, err)
		}
	}
	if len(l.scripts) != 0 || len(evs) != 0 {
		t.Fatalf("switchover where none was due: %q %q", l.scripts, evs)
	}
	if err := r.Before(ctx, "n1", 0, restart("service:redis"), collect(&evs)); err != nil {
		t.Fatal(err)
	}
	if r.handedOverTo("n1") != "n2" || !slices.Equal(evs, []string{"n1 failover"}) {
		t.Fatalf("handed over to %q, events %q", r.handedOverTo("n1"), evs)
	}
	// The old primary rejoins (the fixture still says role:slave: the
	// rejoin script itself decides), then the gate passes.
	if err := r.After(ctx, "n1", 0, restart("service:redis"), collect(&evs)); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l.scripts, []string{"n1: failover", "n1: rejoin"}) ||
		!slices.Equal(evs, []string{"n1 failover", "n1 rejoin", "n1 health-gate"}) {
		t.Errorf("scripts %q, events %q", l.scripts, evs)
	}
	// A node that did not hand over does not rejoin.
	evs = nil
	if err := r.After(ctx, "n3", 0, restart("service:redis"), collect(&evs)); err != nil || !slices.Equal(evs, []string{"n3 health-gate"}) {
		t.Errorf("n3: %v %q", err, evs)
	}
}

// With no majority naming a primary, the primary's Redis is not
// restarted; a refused failover is an error once the gate's time is up;
// a failed gate stops the node.
func TestRolloutRefusals(t *testing.T) {
	ctx := context.Background()
	l := newLab(t, "n1")
	l.write("n2", "sentinel", "primary 10.0.0.2 6379\nquorum ok\n")
	l.write("n3", "sentinel", "down\n")
	r := newRollout(threeNodes(), restartPlan(true), "n1", l.hosts, zeroSecret)
	var evs []string
	err := r.Before(ctx, "n1", 0, restart("service:redis"), collect(&evs))
	if err == nil || err.Error() != "n1: no majority of Sentinels names a primary now; not restarting its Redis" || len(l.scripts) != 0 {
		t.Errorf("no majority: %v, scripts %q", err, l.scripts)
	}
	// The gate (0 s: one look) fails after n2, whose Sentinel disagrees
	// with the two others.
	l.setPrimary("n1")
	l.write("n2", "sentinel", "primary 10.0.0.2 6379\nquorum ok\n")
	if err := r.After(ctx, "n2", 0, nil, collect(&evs)); err == nil ||
		!strings.Contains(err.Error(), `health gate after n2 (waited 0s): n2: its Sentinel names "10.0.0.2 6379", the majority n1`) {
		t.Errorf("gate: %v", err)
	}
	if !slices.Equal(evs, []string{"n2 health-gate failed"}) {
		t.Errorf("events %q", evs)
	}

	l = newLab(t, "n1")
	l.refuse = "NOGOODSLAVE No suitable replica to promote"
	r = newRollout(threeNodes(), restartPlan(false), "n1", l.hosts, zeroSecret)
	evs = nil
	err = r.Before(ctx, "n1", 0, restart("service:redis"), collect(&evs))
	if err == nil || err.Error() != `SENTINEL FAILOVER on n1: "NOGOODSLAVE No suitable replica to promote"` {
		t.Errorf("refused failover: %v", err)
	}
	if r.handedOverTo("n1") != "" || !slices.Equal(evs, []string{"n1 failover failed"}) {
		t.Errorf("handed over to %q, events %q", r.handedOverTo("n1"), evs)
	}
	// Not gated: After does nothing.
	if err := r.After(ctx, "n2", 0, nil, collect(&evs)); err != nil || len(evs) != 1 {
		t.Errorf("ungated After: %v %q", err, evs)
	}
}

// The system's rollout is made for the plan's live primary: it goes last
// in a replicas-first phase.
func TestSystemRollout(t *testing.T) {
	s := &system{c: threeNodes()}
	p := &engine.Plan{Live: json.RawMessage(`{"design":"sentinel","primary":{"node":"n2","source":"sentinels","answers":3}}`)}
	ro := s.Rollout(p, nil, zeroSecret)
	if got := ro.Order(engine.Phase{Order: "replicas-first"}, []string{"n1", "n2", "n3"}); !slices.Equal(got, []string{"n1", "n3", "n2"}) {
		t.Errorf("order %q", got)
	}
	if got := ro.Order(engine.Phase{}, []string{"n2", "n1"}); !slices.Equal(got, []string{"n2", "n1"}) {
		t.Errorf("a phase with no order was reordered: %q", got)
	}
	c := threeNodes()
	if c.ipOf("n3") != "10.0.0.3" || c.ipOf("nx") != "" {
		t.Errorf("ipOf: %q %q", c.ipOf("n3"), c.ipOf("nx"))
	}
}

// Without the check package, check says so and fails.
func TestCheckWithoutCheckPackage(t *testing.T) {
	defer func(f func(context.Context, *Cluster, engine.CheckRequest) bool) { checkFunc = f }(checkFunc)
	checkFunc = nil
	var out bytes.Buffer
	s := &system{c: threeNodes()}
	if s.Check(context.Background(), engine.CheckRequest{Out: &out}) || out.String() != "cluster t: this hastack was built without the HSTS check\n" {
		t.Errorf("got %q", out.String())
	}
	called := false
	RegisterCheck(func(_ context.Context, c *Cluster, _ engine.CheckRequest) bool { called = c.Name == "t"; return true })
	if !s.Check(context.Background(), engine.CheckRequest{Out: &out}) || !called {
		t.Error("the registered check was not called")
	}
}
