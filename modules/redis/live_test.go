package redis

import (
	"encoding/json"
	"strings"
	"testing"

	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

func confResource(t *testing.T, spec map[string]any) *modules.Resource {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return &modules.Resource{ID: "conf:/f", Kind: "conf", Spec: b}
}

// The hash Redis writes of a password ("user default on #...") never shows
// in a diff: its line names no secret, this package says it holds one.
func TestDiffHidesPasswordHash(t *testing.T) {
	nf := &modules.NodeFacts{Files: map[string]*modules.FileFact{"/f": {Data: []byte("user default on #0123abcd ~* &* +@all\nport 1\n"), Mode: 0o640, Owner: "root", Group: "root"}},
		Dirs: map[string]*modules.FileFact{}, Irregular: map[string]string{}, Users: map[string]int{"root": 0}, Groups: map[string]int{"root": 0}}
	r := confResource(t, map[string]any{"path": "/f", "owner": "root", "group": "root", "mode": "0640", "directives": []map[string]any{{"key": "port", "value": "2"}}})
	m, _ := modules.Lookup("conf")
	c, err := m.Diff(r, &modules.Fact{Node: nf}, &modules.Env{Secret: secret.New("new-pw-123")})
	if err != nil || c == nil {
		t.Fatalf("Diff = %+v, %v", c, err)
	}
	if strings.Contains(c.Diff, "0123abcd") || !strings.Contains(c.Diff, "user default ") || !strings.Contains(c.Diff, "+port 2") {
		t.Errorf("diff:\n%s", c.Diff)
	}
}

// A conf whose live server the facts say is up is set live, with no
// restart; a stopped one (or one never asked) gets only its file.
func TestLiveSetOnlyWhenUp(t *testing.T) {
	for _, tc := range []struct {
		live  string
		state string
		want  bool
	}{{"redis", "up", true}, {"redis", "down", false}, {"sentinel", "up", true}, {"sentinel", "", false}} {
		nf := &modules.NodeFacts{Files: map[string]*modules.FileFact{"/f": {Data: []byte("maxmemory 1\n"), Mode: 0o640, Owner: "root", Group: "root"}},
			Dirs: map[string]*modules.FileFact{}, Irregular: map[string]string{}, Users: map[string]int{"root": 0}, Groups: map[string]int{"root": 0}}
		if tc.state != "" {
			nf.SetSharedKey(InfoFact, InfoKey("10.0.0.1 6379"), RedisView{State: tc.state})
			nf.SetSharedKey(SentinelFact, SentinelKey(SentinelAt{Addr: "10.0.0.1 6379", Set: "s"}), SentinelView{State: tc.state})
		}
		r := confResource(t, map[string]any{"path": "/f", "owner": "root", "group": "root", "mode": "0640", "live": tc.live, "liveAddr": "10.0.0.1 6379",
			"directives": []map[string]any{{"key": "maxmemory", "value": "2", "liveSet": "CONFIG SET maxmemory"}}})
		m, _ := modules.Lookup("conf")
		c, err := m.Diff(r, &modules.Fact{Node: nf}, &modules.Env{})
		if err != nil || c == nil {
			t.Fatalf("%+v: Diff = %+v, %v", tc, c, err)
		}
		if c.Live != tc.want {
			t.Errorf("%+v: live %v, want %v (%s)", tc, c.Live, tc.want, c.Summary)
		}
	}
}
