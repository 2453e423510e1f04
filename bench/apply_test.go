package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/lab"
	"hastack.dev/hastack/internal/sshconn"
	"hastack.dev/hastack/stacks/hsts"
	"hastack.dev/hastack/stacks/hsts/check"
)

// The first apply of a fresh cluster, as `hastack apply -auto-approve`
// does it. Each op needs fresh nodes, so run it a few times only:
//
//	go test ./bench -run '^$' -bench FirstApply31 -benchtime 3x
func BenchmarkFirstApply3(b *testing.B) { benchFirstApply(b, 3) }

func BenchmarkFirstApply31(b *testing.B) { benchFirstApply(b, 31) }

// benchFirstApply times, per op, a plan and apply of a fresh lab of n nodes
// (the lab's start is not timed). It then reports how many checks of
// `hastack check` fail right after the apply (failed-checks) and how long
// the checks take to pass (s-to-healthy, the polls of check -wait); an
// apply after which the cluster is not healthy within a minute fails.
func benchFirstApply(b *testing.B, n int) {
	b.Setenv("HASTACK_REDIS_PASSWORD", password)
	var failedChecks, toHealthy float64
	b.StopTimer()
	for range b.N {
		l := lab.Start(b, n) // skips, saying why, when not root or a program is missing
		dir := b.TempDir()
		if err := l.WriteConfig(dir, ""); err != nil {
			b.Fatal(err)
		}
		opts := engine.Options{SSH: sshconn.Config{KnownHosts: []string{l.KnownHosts}, IdentityFiles: []string{l.Identity}, Dial: l.DialContext}}
		if os.Getenv("HASTACK_TIMING") != "" { // as hastack's: how long each step of the plan took
			opts.Trace = func(step string, d time.Duration) { b.Logf("timing: %-45s %6.3fs", step, d.Seconds()) }
		}

		b.StartTimer()
		start := time.Now()
		s := plan(b, dir, opts)
		planned := time.Now()
		var phases phaseTimes
		for _, o := range s.Apply(context.Background(), phases.add) {
			if o.Err() != nil {
				b.Fatalf("apply: %v %v", o.Err(), o.Failed)
			}
		}
		b.StopTimer()
		b.Logf("plan %.1fs, then apply:\n%s", planned.Sub(start).Seconds(), phases.String(s.Plans[0].Phases))
		s.Close()

		bad, wait := checkAfterApply(b, dir, opts)
		failedChecks += float64(bad)
		toHealthy += wait.Seconds()
		// The next op's lab has the same name: this one goes first.
		if err := l.Down(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(failedChecks/float64(b.N), "failed-checks")
	b.ReportMetric(toHealthy/float64(b.N), "s-to-healthy")
}

// checkAfterApply runs hastack check's health checks once, then waits for
// them to pass as check -wait does: the failures of the first round, and
// the time until all passed.
func checkAfterApply(b *testing.B, dir string, opts engine.Options) (int, time.Duration) {
	b.Helper()
	cfg, probs, err := config.Load(dir)
	if err != nil || len(probs) > 0 {
		b.Fatalf("load: %v %v", err, probs)
	}
	cl := cfg.Clusters[0]
	sec, err := engine.ResolveSecret(cl)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hosts, err := engine.ConnectCluster(ctx, cl, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		for _, h := range hosts {
			h.Close()
		}
	}()
	hc, err := hsts.Decode(cl)
	if err != nil {
		b.Fatal(err)
	}
	c := &check.Checker{Cluster: hc, Hosts: hosts, Secret: sec}
	start := time.Now()
	first := c.Health(ctx)
	if f := first.Failed(); len(f) > 0 {
		b.Logf("right after the apply, %d of %d checks fail: %v", len(f), len(first), f)
	}
	if r := c.HealthWait(ctx, time.Minute); !r.OK() {
		b.Fatalf("the cluster is not healthy a minute after the first apply: %v", r.Failed())
	}
	return len(first.Failed()), time.Since(start)
}

// phaseTimes keeps when each phase's first change began and its last one
// ended, from apply's events.
type phaseTimes struct {
	mu         sync.Mutex
	first, end map[int]time.Time
	slowest    map[int]engine.Event // the phase's longest change
}

func (p *phaseTimes) add(e engine.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.first == nil {
		p.first, p.end, p.slowest = map[int]time.Time{}, map[int]time.Time{}, map[int]engine.Event{}
	}
	ph, now := e.Change.Phase, time.Now()
	if _, ok := p.first[ph]; !ok {
		p.first[ph] = now.Add(-e.Duration)
	}
	p.end[ph] = now
	if e.Duration > p.slowest[ph].Duration {
		p.slowest[ph] = e
	}
}

// String is one line per phase that changed something: its wall time and
// its slowest change.
func (p *phaseTimes) String(phases []engine.Phase) string {
	var b strings.Builder
	for i, ph := range phases {
		if t, ok := p.first[i]; ok {
			e := p.slowest[i]
			fmt.Fprintf(&b, "  %5.2fs  phase %d: %s (slowest: %s %s, %.2fs)\n", p.end[i].Sub(t).Seconds(), i+1, ph.Name, e.Node, e.Change.ID, e.Duration.Seconds())
		}
	}
	return b.String()
}
