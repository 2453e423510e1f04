package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"hastack.dev/hastack/internal/secret"
)

func TestLoadThreeNodeExample(t *testing.T) {
	cfg, ps, err := Load("../../examples/three-node")
	if err != nil || len(ps) > 0 {
		t.Fatalf("Load: err=%v problems:\n%v", err, ps)
	}
	if cfg.Context == nil {
		t.Error("Config.Context is nil")
	}
	cl := cfg.Cluster("transfer")
	if cl == nil {
		t.Fatal(`no cluster "transfer"`)
	}
	// Only what every system has: the HSTS driver decodes the rest
	// (stacks/hsts/config_test.go).
	want := &Cluster{
		Name:  "transfer",
		Field: "clusters",
		Nodes: []Node{
			{Name: "node1", IP: "10.11.100.160", SSH: SSH{Host: "10.11.100.160", Port: 22, User: "root"}},
			{Name: "node2", IP: "10.11.52.248", SSH: SSH{Host: "10.11.52.248", Port: 22, User: "root"}},
			{Name: "node3", IP: "10.11.52.249", SSH: SSH{Host: "10.11.52.249", Port: 22, User: "root"}},
		},
		Secret: secret.Source{Env: "HASTACK_REDIS_PASSWORD"},
	}
	if d := cmp.Diff(want, cl, cmpopts.IgnoreFields(Cluster{}, "Value")); d != "" {
		t.Errorf("decoded cluster (-want +got):\n%s", d)
	}
}

func TestLoadFiveNodeExample(t *testing.T) {
	cfg, ps, err := Load("../../examples/five-node")
	if err != nil || len(ps) > 0 {
		t.Fatalf("Load: err=%v problems:\n%v", err, ps)
	}
	cl := cfg.Clusters[0]
	if len(cl.Nodes) != 5 || cl.Secret.File == "" || cl.Nodes[4].SSH.Port != 2205 {
		t.Errorf("unexpected decode: %d nodes, secret %v, node5 ssh %+v", len(cl.Nodes), cl.Secret, cl.Nodes[4].SSH)
	}
}

// A rule that cannot be evaluated on a valid config would silently pass;
// every #problems field must decode to an empty list on the examples.
func TestEveryRuleEvaluates(t *testing.T) {
	for _, dir := range []string{"../../examples/three-node", "../../examples/five-node"} {
		cfg, ps, err := Load(dir)
		if err != nil || len(ps) > 0 {
			t.Fatalf("%s: err=%v problems:\n%v", dir, err, ps)
		}
		pl := placer{}
		got, skipped := pl.ruleProblems(cfg.Clusters[0].Value)
		if len(got) > 0 || len(skipped) > 0 {
			t.Errorf("%s: problems %v, rules not evaluated %v", dir, got, skipped)
		}
	}
}

// writeConfig writes one cluster.cue into a temporary folder.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	src := "package cluster\n\nimport \"hastack.dev/schema/hsts\"\n\nclusters: c: hsts.#Cluster & {\n" + body + "}\n"
	if err := os.WriteFile(filepath.Join(dir, "cluster.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const threeNodes = `	nodes: [{name: "a", ip: "10.0.0.1"}, {name: "b", ip: "10.0.0.2"}, {name: "c", ip: "10.0.0.3"}]
	primary: "a"
`

func TestProblemsPointAtUserFile(t *testing.T) {
	dir := writeConfig(t, threeNodes+"\tsentinel: quorum: 3\n\tredis: port: \"x\"\n")
	_, ps, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("want 2 problems, got:\n%v", ps)
	}
	for _, p := range ps {
		if !strings.HasSuffix(p.File, "cluster.cue") || strings.Contains(p.File, "cue.mod") || p.Line == 0 {
			t.Errorf("problem not at the user's file: %#v", p)
		}
	}
}

func TestSecretNeverInProblems(t *testing.T) {
	const pw = "S3cret-Passw0rd"
	for _, form := range []string{
		`"` + pw + `"`,
		`{env: "` + pw + `"} & {env: "OTHER"}`,
		`{password: "` + pw + `"}`,
		`["` + pw + `"]`,
		`{env: "` + pw + `", file: "/x"}`,
	} {
		dir := writeConfig(t, threeNodes+"\tsecret: "+form+"\n")
		_, ps, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 1 || ps[0].Msg != secretMsg {
			t.Errorf("secret: %s: want one secret problem, got:\n%v", form, ps)
		}
		if out := ps.Error(); strings.Contains(out, pw) {
			t.Errorf("secret: %s: password printed:\n%s", form, out)
		}
	}
}

func TestSecretProblemsChecksPresentSource(t *testing.T) {
	dir := writeConfig(t, threeNodes+"\tsecret: env: \"HASTACK_CONFIG_TEST_PW\"\n")
	cfg, ps, err := Load(dir)
	if err != nil || len(ps) > 0 {
		t.Fatalf("err=%v problems %v", err, ps)
	}
	if got := cfg.SecretProblems(); len(got) != 0 {
		t.Errorf("unset variable must not be a problem for vet, got %v", got)
	}
	t.Setenv("HASTACK_CONFIG_TEST_PW", "has space")
	got := cfg.SecretProblems()
	if len(got) != 1 || strings.Contains(got.Error(), "has space") {
		t.Errorf("want one problem that does not quote the value, got %v", got)
	}
}

func TestUsageErrors(t *testing.T) {
	empty := t.TempDir()
	for _, dir := range []string{filepath.Join(empty, "missing"), empty} {
		if _, _, err := Load(dir); err == nil {
			t.Errorf("Load(%s): want a usage error", dir)
		} else if _, ok := err.(*UsageError); !ok {
			t.Errorf("Load(%s): want *UsageError, got %T", dir, err)
		}
	}
}

func TestProblemFormat(t *testing.T) {
	p := Problem{File: "c.cue", Line: 3, Col: 4, Path: "clusters.x.primary", Msg: "bad"}
	if got := p.String(); got != "c.cue:3:4: clusters.x.primary: bad" {
		t.Errorf("String: %q", got)
	}
	if got := p.GitHub(); got != "::error file=c.cue,line=3,col=4::clusters.x.primary: bad" {
		t.Errorf("GitHub: %q", got)
	}
	if got := (Problem{Path: "clusters.x", Msg: "m"}).String(); got != "clusters.x: m" {
		t.Errorf("no position: %q", got)
	}
	if got := pathString([]string{"clusters", "my-cluster", "nodes", "0", "ip"}); got != `clusters."my-cluster".nodes[0].ip` {
		t.Errorf("pathString: %q", got)
	}
}

func BenchmarkVet(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		cfg, ps, err := Load("../../examples/three-node")
		if err != nil || len(ps) > 0 || len(cfg.SecretProblems()) > 0 {
			b.Fatalf("err=%v problems=%v", err, ps)
		}
	}
}
