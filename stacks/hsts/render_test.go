package hsts

import (
	"encoding/json"
	"strings"

	"hastack.dev/hastack/internal/secret"
	"testing"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/modules"
)

// openSys opens cl with the HSTS driver.
func openSys(t testing.TB, cl *config.Cluster) engine.System {
	t.Helper()
	sys, err := engine.Open(cl)
	if err != nil {
		t.Fatal(err)
	}
	return sys
}

// decoded is cl's HSTS settings.
func decoded(t testing.TB, cl *config.Cluster) *Cluster {
	t.Helper()
	c, err := Decode(cl)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testRender renders cl for these inputs, as a plan does.
func testRender(t testing.TB, cfg *config.Config, cl *config.Cluster, primary string, up map[string]bool, live bool) (*engine.Rendered, error) {
	t.Helper()
	return engine.Render(cfg.Context, cl, openSys(t, cl), Inputs(primary, up, live, cl.PreviousSecret != nil))
}

func loadExample(t testing.TB, dir string) *config.Config {
	t.Helper()
	cfg, probs, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	return cfg
}

func TestRenderThreeNode(t *testing.T) {
	cfg := loadExample(t, "../../examples/three-node")
	cl := cfg.Clusters[0]
	r, err := testRender(t, cfg, cl, decoded(t, cl).Primary, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Nodes) != 3 || len(r.Phases) != 13 {
		t.Fatalf("got %d nodes, %d phases", len(r.Nodes), len(r.Phases))
	}
	if r.Nodes[0].Name != decoded(t, cl).Primary {
		t.Errorf("first node %s, want the primary %s", r.Nodes[0].Name, decoded(t, cl).Primary)
	}
	// Rendering for another primary puts it first.
	r2, err := testRender(t, cfg, cl, cl.Nodes[2].Name, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Nodes[0].Name != cl.Nodes[2].Name {
		t.Errorf("first node %s, want %s", r2.Nodes[0].Name, cl.Nodes[2].Name)
	}
}

// A rotation renders, on every node, the last step that drops the old
// password from Redis and Sentinel, as scripts for the redisq prelude.
func TestRenderRotationUsesPrelude(t *testing.T) {
	cfg := loadExample(t, "../../examples/three-node")
	cl := *cfg.Clusters[0]
	cl.PreviousSecret = &secret.Source{Env: "OLD"}
	r, err := testRender(t, cfg, &cl, decoded(t, &cl).Primary, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, res := range r.Nodes[0].Resources {
		if strings.HasPrefix(res.ID, "command:drop-previous-password-") {
			var spec struct {
				Stdin   string
				Prelude string
			}
			if err := json.Unmarshal(res.Spec, &spec); err != nil {
				t.Fatal(err)
			}
			// The password comes from the prelude's variable, on stdin.
			if spec.Prelude != "redis" || !strings.Contains(spec.Stdin, "redism ") || strings.Contains(spec.Stdin, "@@hastack:") {
				t.Errorf("%s: not a redism script that reads the password from the prelude: %+v", res.ID, spec)
			}
			found++
		}
	}
	if found != 2 {
		t.Errorf("found %d drop-previous-password commands, want 2 (redis, sentinel)", found)
	}
}

// A new cluster starts Redis on the primary, then on every replica
// together, and only then Sentinel the same way (a Sentinel started before
// the last replica connects misses it for 10 s), then the HSTS services,
// then waits for its Sentinels; a live one rolls everything in one phase,
// one node at a time, replicas first.
func TestRenderStartPhase(t *testing.T) {
	cfg := loadExample(t, "../../examples/three-node")
	cl := cfg.Clusters[0]
	batches := `"batches":[1,"100%"]`
	fresh := func(what string) string {
		return `{"name":"start ` + what + `: the primary, then every replica together (003 step 12)",` + batches
	}
	live := `"serial":true,"order":"replicas-first"`
	for _, tc := range []struct {
		live                     bool
		redis, sentinel, service string // in each start phase's JSON
		phases                   [3]int // Sentinel's phase, the services', the quorum's, after Redis's
	}{
		{false, fresh("Redis"), fresh("Sentinel"), fresh("the HSTS services"), [3]int{1, 2, 4}},
		{true, live + `,"gate":true,"failover":"asperaredisd"`, live, live, [3]int{0, 0, 1}},
	} {
		r, err := testRender(t, cfg, cl, decoded(t, cl).Primary, nil, tc.live)
		if err != nil {
			t.Fatal(err)
		}
		phase := map[string]int{}
		for _, res := range r.Nodes[0].Resources {
			phase[res.ID] = res.Phase
		}
		redis, sentinel, noded := phase["service:asperaredisd"], phase["service:asperaredissentinel"], phase["service:asperanoded"]
		if phase["service:asperarund"] != noded {
			t.Errorf("live %v: asperarund in phase %d, asperanoded in %d", tc.live, phase["service:asperarund"], noded)
		}
		quorum := phase["sentinelreset:"+decoded(t, cl).PrimarySet]
		if got := [3]int{sentinel - redis, noded - redis, quorum - redis}; got != tc.phases {
			t.Errorf("live %v: Sentinel, the services and the quorum %v phases after Redis, want %v", tc.live, got, tc.phases)
		}
		for _, c := range []struct {
			ph   int
			want string
		}{{redis, tc.redis}, {sentinel, tc.sentinel}, {noded, tc.service}} {
			b, err := json.Marshal(r.Phases[c.ph])
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), c.want) {
				t.Errorf("live %v: phase %d is %s, want %s", tc.live, c.ph, b, c.want)
			}
		}
	}
}

// A new cluster's apply ends with every node waiting, all at once, for its
// own Sentinel to know the others: of all nodes, or of the nodes a partial
// plan reached. A live cluster has no such wait.
func TestRenderFreshWait(t *testing.T) {
	cfg := loadExample(t, "../../examples/three-node")
	cl := cfg.Clusters[0]
	primary := decoded(t, cl).Primary
	for _, tc := range []struct {
		live      bool
		unreached []string
		want      string // in the command's display; "" when there is none
	}{
		{false, nil, "knows the other 2 Sentinels and 2 replicas"},
		{false, []string{"node3"}, "knows the other 1 Sentinels and 1 replicas"},
		{true, nil, ""},
	} {
		in := Inputs(primary, nil, tc.live, false)
		if tc.unreached != nil {
			in["unreached"] = tc.unreached
		}
		r, err := engine.Render(cfg.Context, cl, openSys(t, cl), in)
		if err != nil {
			t.Fatal(err)
		}
		services := -1
		for _, n := range r.Nodes {
			var wait *modules.Resource
			for i, res := range n.Resources {
				switch res.ID {
				case "service:asperarund":
					services = res.Phase
				case "command:wait-sentinel-peers":
					wait = &n.Resources[i]
				}
			}
			switch {
			case tc.want == "" && wait != nil:
				t.Errorf("live %v: %s waits for its Sentinel's peers", tc.live, n.Name)
			case tc.want == "":
			case wait == nil:
				t.Fatalf("%v: %s has no wait", tc.unreached, n.Name)
			case !strings.Contains(string(wait.Spec), tc.want):
				t.Errorf("%v: %s's wait is %s, want %q", tc.unreached, n.Name, wait.Spec, tc.want)
			case wait.Phase != services+1:
				t.Errorf("%s waits in phase %d, the services start in %d", n.Name, wait.Phase, services)
			default:
				if ph := r.Phases[wait.Phase]; ph.Serial || len(ph.Batches) > 0 || ph.Gate {
					t.Errorf("the wait's phase %+v is not every node at once", ph)
				}
			}
		}
	}
}
