package bench

import (
	"fmt"
	"runtime/debug"
	"testing"

	"hastack.dev/hastack/engine/config"
)

// BenchmarkVet1001 times `hastack vet` of a plain stack of 1,001 nodes
// (config.Load and the secret checks, as the CLI does, with the CLI's
// GOGC=400: cmd/hastack/main.go); no root, no lab:
//
//	go test ./bench -run '^$' -bench Vet1001 -benchtime 5x
func BenchmarkVet1001(b *testing.B) {
	nodes := make([]plainNode, 1001)
	for i := range nodes {
		nodes[i] = plainNode{fmt.Sprintf("node%d", i+1), fmt.Sprintf("10.%d.%d.%d", 20+i/62500, i/250%250, i%250+1)}
	}
	dir := b.TempDir()
	if err := writePlainStack(dir, nodes); err != nil {
		b.Fatal(err)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	b.ReportAllocs()
	for b.Loop() {
		cfg, ps, err := config.Load(dir)
		if err != nil || len(ps) > 0 {
			b.Fatalf("vet: err=%v problems=%v", err, ps)
		}
		if ps := cfg.SecretProblems(); len(ps) > 0 {
			b.Fatalf("vet: %v", ps)
		}
		if n := len(cfg.Clusters); n != 1 || len(cfg.Clusters[0].Nodes) != 1001 {
			b.Fatalf("vet: %d systems", n)
		}
	}
}
