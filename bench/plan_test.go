// Package bench measures hastack plan on converged clusters of real sshd
// nodes (internal/lab). It only runs under -bench, as root:
//
//	go test ./bench -run '^$' -bench PlanConverged -benchtime 20x
package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/lab"
	"hastack.dev/hastack/internal/sshconn"
)

const password = "Bench-Passw0rd-31415"

func BenchmarkPlanConverged3(b *testing.B) { benchPlan(b, 3) }

// 11: the middle figure of issue 9's record (0.28 s before the move).
func BenchmarkPlanConverged11(b *testing.B) { benchPlan(b, 11) }

// 31, not 30: the schema wants an odd number of nodes (Sentinel majority).
func BenchmarkPlanConverged31(b *testing.B) { benchPlan(b, 31) }

// benchPlan starts a lab of n nodes once, applies the cluster, then times
// one full plan per op, as `hastack plan` does it: load and validate the
// config, connect to every node, gather, diff, close.
func benchPlan(b *testing.B, n int) {
	l := lab.Start(b, n) // skips, saying why, when not root or a program is missing
	b.Setenv("HASTACK_REDIS_PASSWORD", password)
	dir := b.TempDir()
	if err := l.WriteConfig(dir, ""); err != nil {
		b.Fatal(err)
	}
	// As `hastack plan` without -out or -json: no fingerprints.
	opts := engine.Options{SSH: sshconn.Config{KnownHosts: []string{l.KnownHosts}, IdentityFiles: []string{l.Identity}, Dial: l.DialContext}, NoFingerprints: true}
	if os.Getenv("HASTACK_TIMING") != "" { // as hastack's: how long each step of a plan took
		opts.Trace = func(step string, d time.Duration) { b.Logf("timing: %-45s %6.3fs", step, d.Seconds()) }
	}

	s := plan(b, dir, opts)
	for _, o := range s.Apply(context.Background(), func(engine.Event) {}) {
		if o.Err() != nil {
			b.Fatalf("apply: %v %v", o.Err(), o.Failed)
		}
	}
	s.Close()
	if s := plan(b, dir, opts); changes(s) > 0 {
		b.Fatalf("not converged after apply: %d changes", changes(s))
	} else {
		s.Close()
	}

	// As a plan on a machine that planned this cluster before (a scheduled
	// drift check, a developer's second plan): the stack's evaluation comes
	// from the render cache. And as a first plan (a fresh CI container).
	cache := &engine.RenderCache{Dir: b.TempDir()}
	b.Run("render-cache", func(b *testing.B) { timePlans(b, dir, n, withCache(opts, cache)) })
	b.Run("no-render-cache", func(b *testing.B) { timePlans(b, dir, n, opts) })
}

func withCache(o engine.Options, c *engine.RenderCache) engine.Options {
	o.RenderCache = c
	return o
}

// timePlans times full plans of the converged cluster and reports SSH
// connections per node per plan (exactly 1, or the benchmark fails).
func timePlans(b *testing.B, dir string, n int, opts engine.Options) {
	plan(b, dir, opts).Close() // fills the render cache, if any
	dials := sshconn.Dials()
	b.ResetTimer()
	for b.Loop() {
		s := plan(b, dir, opts)
		if c := changes(s); c > 0 {
			b.Fatalf("plan of a converged cluster has %d changes", c)
		}
		s.Close()
	}
	b.StopTimer()
	perNode := float64(sshconn.Dials()-dials) / float64(b.N) / float64(n)
	b.ReportMetric(perNode, "conns/node")
	if perNode != 1 {
		b.Errorf("%.2f SSH connections per node per plan, want exactly 1", perNode)
	}
}

func plan(b *testing.B, dir string, opts engine.Options) *engine.Session {
	b.Helper()
	cfg, probs, err := config.Load(dir)
	if err != nil || len(probs) > 0 {
		b.Fatalf("load: %v %v", err, probs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := engine.Prepare(ctx, cfg, opts)
	if err != nil {
		b.Fatalf("plan: %v", err)
	}
	return s
}

func changes(s *engine.Session) int {
	var c engine.Counts
	for _, p := range s.Plans {
		c.Add(p)
	}
	if c.Empty() {
		return 0
	}
	return max(1, c.Create+c.Update+c.Delete+c.Run+c.Services)
}
