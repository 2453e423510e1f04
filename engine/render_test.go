package engine

import (
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
	if len(r.Nodes) != 3 || len(r.Phases) != 9 {
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
