package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hastack.dev/hastack/internal/secret"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// A cached render is the fresh one; any input that differs misses; a
// damaged entry is rendered again; only the newest entries are kept.
func TestRenderCache(t *testing.T) {
	cfg, cl := echoCluster(t, 3)
	sys := echoSystem{plain{cl}, "/tmp/x"}
	c := &RenderCache{Dir: filepath.Join(t.TempDir(), "render"), Keep: 2}
	in := map[string]any{"text": "one", "extra": []string{"b"}}
	fresh, err := Render(cfg.Context, cl, sys, in)
	if err != nil {
		t.Fatal(err)
	}
	render := func(in map[string]any) (*Rendered, bool) {
		t.Helper()
		r, hit, err := c.Render(cfg.Context, cl, sys, in)
		if err != nil {
			t.Fatal(err)
		}
		return r, hit
	}
	if _, hit := render(in); hit {
		t.Fatal("an empty cache hit")
	}
	r, hit := render(in)
	if !hit {
		t.Fatal("the same inputs missed")
	}
	if d := cmp.Diff(fresh, r, cmpopts.IgnoreFields(Rendered{}, "Cluster")); d != "" {
		t.Errorf("the cached render differs from a fresh one (-fresh +cached):\n%s", d)
	}
	one := map[string]any{"text": "one"}
	for _, tc := range []struct {
		name string
		in   map[string]any
		hit  bool
	}{
		{"the same inputs in another map", map[string]any{"extra": []string{"b"}, "text": "one"}, true},
		{"another text", map[string]any{"text": "two", "extra": []string{"b"}}, false},
		{"no extra", one, false},
	} {
		if _, hit := render(tc.in); hit != tc.hit {
			t.Errorf("%s: hit %t, want %t", tc.name, hit, tc.hit)
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
	r, hit = render(one)
	if hit || r == nil {
		t.Error("a damaged entry was used")
	}
	if _, hit := render(one); !hit {
		t.Error("the entry rendered again after damage was not cached")
	}
	// The password never reaches the cache: it is a placeholder there.
	ents, _ = filepath.Glob(filepath.Join(c.Dir, "*.json"))
	for _, p := range ents {
		b, _ := os.ReadFile(p)
		if strings.HasPrefix(string(b), `{"phases": [`) && len(b) < 20 {
			continue // damaged above
		}
		if !strings.Contains(string(b), secret.Placeholder) {
			t.Errorf("%s holds no password placeholder: is the password filled in before caching?", p)
		}
	}
}
