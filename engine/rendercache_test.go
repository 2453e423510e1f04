package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// A cached render is the fresh one; any input that differs misses; a
// damaged entry is rendered again; only the newest entries are kept.
func TestRenderCache(t *testing.T) {
	cfg := loadExample(t, "../examples/three-node")
	cl := cfg.Clusters[0]
	c := &RenderCache{Dir: filepath.Join(t.TempDir(), "render"), Keep: 2}
	up := map[string]bool{cl.Nodes[0].Name: true, cl.Nodes[1].Name: true}
	fresh, err := Render(cfg.Context, cl, cl.Primary, up, true)
	if err != nil {
		t.Fatal(err)
	}
	render := func(primary string, up map[string]bool, live bool) (*Rendered, bool) {
		t.Helper()
		r, hit, err := c.Render(cfg.Context, cl, primary, up, live)
		if err != nil {
			t.Fatal(err)
		}
		return r, hit
	}
	if _, hit := render(cl.Primary, up, true); hit {
		t.Fatal("an empty cache hit")
	}
	r, hit := render(cl.Primary, up, true)
	if !hit {
		t.Fatal("the same inputs missed")
	}
	if d := cmp.Diff(fresh, r, cmpopts.IgnoreFields(Rendered{}, "Cluster")); d != "" {
		t.Errorf("the cached render differs from a fresh one (-fresh +cached):\n%s", d)
	}
	one := map[string]bool{cl.Nodes[0].Name: true}
	for _, in := range []struct {
		name    string
		primary string
		up      map[string]bool
		live    bool
		hit     bool
	}{
		{"another primary", cl.Nodes[2].Name, up, true, false},
		{"another Redis up", cl.Primary, one, true, false},
		{"a Redis marked false is a Redis down", cl.Primary, map[string]bool{cl.Nodes[0].Name: true, cl.Nodes[2].Name: false}, true, true},
		{"not live", cl.Primary, up, false, false},
	} {
		if _, hit := render(in.primary, in.up, in.live); hit != in.hit {
			t.Errorf("%s: hit %t, want %t", in.name, hit, in.hit)
		}
	}
	ents, _ := filepath.Glob(filepath.Join(c.Dir, "*.json"))
	if len(ents) != 2 {
		t.Errorf("%d entries kept, want Keep=2", len(ents))
	}
	// A damaged entry is rendered again, and then cached again.
	for _, p := range ents {
		if err := os.WriteFile(p, []byte(`{"phases": [`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if info, err := os.Stat(c.Dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("cache dir mode %v %v, want 0700", info.Mode().Perm(), err)
	}
	for _, p := range append(ents, filepath.Join(c.Dir, "key")) {
		info, _ := os.Stat(p)
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, info.Mode().Perm())
		}
	}
	r, hit = render(cl.Primary, one, true)
	if hit || r == nil {
		t.Error("a damaged entry was used")
	}
	if _, hit := render(cl.Primary, one, true); !hit {
		t.Error("the entry rendered again after damage was not cached")
	}
	// The password never reaches the cache: it is a placeholder there.
	ents, _ = filepath.Glob(filepath.Join(c.Dir, "*.json"))
	for _, p := range ents {
		b, _ := os.ReadFile(p)
		if strings.HasPrefix(string(b), `{"phases": [`) && len(b) < 20 {
			continue // damaged above
		}
		if !strings.Contains(string(b), "@@hastack:redis-password@@") {
			t.Errorf("%s holds no password placeholder: is the password filled in before caching?", p)
		}
	}
}
