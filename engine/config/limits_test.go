package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nodesConfig writes a folder with one cluster of n nodes; the last node
// repeats the first node's IP when dup is set.
func nodesConfig(tb testing.TB, n int, dup bool) string {
	tb.Helper()
	var b strings.Builder
	b.WriteString("package cluster\n\nimport \"hastack.dev/schema/hsts\"\n\nclusters: big: hsts.#Cluster & {\n\tnodes: [\n")
	for i := 1; i <= n; i++ {
		ip := fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)
		if dup && i == n {
			ip = "10.1.0.2"
		}
		fmt.Fprintf(&b, "\t\t{name: \"n%d\", ip: %q},\n", i, ip)
	}
	b.WriteString("\t]\n\tprimary: \"n1\"\n}\n")
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster.cue"), []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}

func benchmarkNodes(b *testing.B, n int) {
	dir := nodesConfig(b, n, true)
	b.ReportAllocs()
	for b.Loop() {
		_, ps, err := Load(dir)
		if err != nil || len(ps) == 0 {
			b.Fatalf("err=%v problems=%v", err, ps)
		}
	}
}

func BenchmarkVetNodes201Duplicate(b *testing.B)  { benchmarkNodes(b, 201) }
func BenchmarkVetNodes1001Duplicate(b *testing.B) { benchmarkNodes(b, 1001) }
func BenchmarkVetNodes5001Duplicate(b *testing.B) { benchmarkNodes(b, 5001) }
