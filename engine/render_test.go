package engine

import (
	"encoding/json"
	"strings"

	"hastack.dev/hastack/internal/secret"
	"testing"

	"hastack.dev/hastack/engine/config"
)

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
	cfg := loadExample(t, "../examples/three-node")
	cl := cfg.Clusters[0]
	r, err := Render(cfg.Context, cl, cl.Primary, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Nodes) != 3 || len(r.Phases) != 10 {
		t.Fatalf("got %d nodes, %d phases", len(r.Nodes), len(r.Phases))
	}
	if r.Nodes[0].Name != cl.Primary {
		t.Errorf("first node %s, want the primary %s", r.Nodes[0].Name, cl.Primary)
	}
	// Rendering for another primary puts it first.
	r2, err := Render(cfg.Context, cl, cl.Nodes[2].Name, nil, false)
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
	cfg := loadExample(t, "../examples/three-node")
	cl := *cfg.Clusters[0]
	cl.PreviousSecret = &secret.Source{Env: "OLD"}
	r, err := Render(cfg.Context, &cl, cl.Primary, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, res := range r.Nodes[0].Resources {
		if strings.HasPrefix(res.ID, "command:drop-previous-password-") {
			var spec struct {
				Stdin string
				Redis bool
			}
			if err := json.Unmarshal(res.Spec, &spec); err != nil {
				t.Fatal(err)
			}
			// The password comes from the prelude's variable, on stdin.
			if !spec.Redis || !strings.Contains(spec.Stdin, "redism ") || strings.Contains(spec.Stdin, "@@hastack:") {
				t.Errorf("%s: not a redism script that reads the password from the prelude: %+v", res.ID, spec)
			}
			found++
		}
	}
	if found != 2 {
		t.Errorf("found %d drop-previous-password commands, want 2 (redis, sentinel)", found)
	}
}

// A new cluster starts its services on the primary, then on every replica
// together; a live one rolls them one node at a time, replicas first.
func TestRenderStartPhase(t *testing.T) {
	cfg := loadExample(t, "../examples/three-node")
	cl := cfg.Clusters[0]
	for _, tc := range []struct {
		live bool
		want string
	}{
		{false, `{"name":"start the services: the primary, then every replica together (003 step 12)","batches":[1,"100%"]}`},
		{true, `"serial":true,"order":"replicas-first","gate":true,"failover":"asperaredisd"`},
	} {
		r, err := Render(cfg.Context, cl, cl.Primary, nil, tc.live)
		if err != nil {
			t.Fatal(err)
		}
		start := -1
		for _, res := range r.Nodes[0].Resources {
			if res.ID == "service:asperaredisd" {
				start = res.Phase
			}
		}
		b, err := json.Marshal(r.Phases[start])
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tc.want) {
			t.Errorf("live %v: the start phase is %s, want %s", tc.live, b, tc.want)
		}
	}
}
