package hsts

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hastack.dev/hastack/engine"
)

// writeCluster writes a cluster of n nodes (10.0.0.1...) to a temp dir.
func writeCluster(tb testing.TB, n int) string {
	var b strings.Builder
	b.WriteString("package cluster\n\nimport \"hastack.dev/schema/hsts\"\n\nclusters: bench: hsts.#Cluster & {\n\tnodes: [\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "\t\t{name: \"node%d\", ip: \"10.0.%d.%d\"},\n", i, i/200, i%200+1)
	}
	b.WriteString("\t]\n\tprimary: \"node1\"\n\tsecret: env: \"HASTACK_REDIS_PASSWORD\"\n}\n")
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.cue"), []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// BenchmarkRender31 is the CPU hastack plan spends rendering 31 nodes:
//
//	go test ./stacks/hsts -run '^$' -bench Render
func BenchmarkRender3(b *testing.B)  { benchRender(b, 3) }
func BenchmarkRender31(b *testing.B) { benchRender(b, 31) }

func benchRender(b *testing.B, n int) {
	cfg := loadExample(b, writeCluster(b, n))
	cl := cfg.Clusters[0]
	for b.Loop() {
		if _, err := testRender(b, cfg, cl, decoded(b, cl).Primary, nil, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderCached31 is the same render read back from the render
// cache (a plan's render once the cache holds its inputs):
//
//	go test ./stacks/hsts -run '^$' -bench RenderCached
func BenchmarkRenderCached31(b *testing.B) {
	cfg := loadExample(b, writeCluster(b, 31))
	cl := cfg.Clusters[0]
	c := &engine.RenderCache{Dir: b.TempDir()}
	if _, _, err := c.Render(cfg.Context, cl, openSys(b, cl), Inputs(decoded(b, cl).Primary, nil, true, false)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, hit, err := c.Render(cfg.Context, cl, openSys(b, cl), Inputs(decoded(b, cl).Primary, nil, true, false)); err != nil || !hit {
			b.Fatalf("hit %t, err %v", hit, err)
		}
	}
}
