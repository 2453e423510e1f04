package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/modules"
)

// Event reports one change as apply carries it out.
type Event struct {
	Node     string
	Change   *ResourceChange
	Err      error // nil when it worked
	Duration time.Duration
}

// Outcome says what apply did on each node.
type Outcome struct {
	Done    map[string][]string // node → IDs applied
	Failed  map[string]error    // node → the first failure
	Skipped map[string][]string // node → IDs not reached
	Stopped bool                // interrupted (Ctrl-C) before the end
}

// Err is nil when every change was applied.
func (o *Outcome) Err() error {
	switch {
	case len(o.Failed) > 0:
		return errors.New("apply failed")
	case o.Stopped:
		return errors.New("apply interrupted")
	}
	return nil
}

// Apply carries out a plan, phase after phase across nodes in the order of
// the procedure. Within a phase the nodes work in parallel, or in batches
// one after the other (Phase.Batches; a serial phase is batches of one),
// the nodes of a batch in parallel. A failure stops its node at once; the
// other nodes of its batch finish their changes, and no later batch or
// phase starts. A cancelled ctx (Ctrl-C) lets the change in
// progress finish (a file write is atomic either way) and stops.
func Apply(ctx context.Context, p *Plan, hosts map[string]host.Host, report func(Event)) *Outcome {
	o := &Outcome{Done: map[string][]string{}, Failed: map[string]error{}, Skipped: map[string][]string{}}
	var mu sync.Mutex
	work := context.WithoutCancel(ctx)
	// Nodes work in parallel; their reports reach the caller one at a time.
	var reportMu sync.Mutex
	report = func(report func(Event)) func(Event) {
		return func(e Event) {
			reportMu.Lock()
			defer reportMu.Unlock()
			report(e)
		}
	}(report)

	// A restart owed is written down on the node before anything it
	// depends on changes, so a later failure cannot lose it.
	var wg sync.WaitGroup
	for _, n := range p.Nodes {
		var units []string
		for _, c := range n.Changes {
			if c.Action == modules.Restart && c.Kind == "service" {
				units = append(units, unitOf(c.ID))
			}
		}
		if len(units) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := hosts[n.Name].Run(work, modules.MarkPending(units), nil)
			if err == nil && res.Code != 0 {
				err = fmt.Errorf("recording pending restarts: exit %d", res.Code)
			}
			if err != nil {
				mu.Lock()
				o.Failed[n.Name] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	runNode := func(n NodePlan, phase int) {
		for _, c := range n.Changes {
			if c.Phase != phase {
				continue
			}
			if ctx.Err() != nil {
				return
			}
			start := time.Now()
			err := c.Apply(work, hosts[n.Name])
			report(Event{Node: n.Name, Change: c, Err: err, Duration: time.Since(start)})
			mu.Lock()
			if err != nil {
				o.Failed[n.Name] = fmt.Errorf("%s: %w", c.ID, err)
				mu.Unlock()
				return
			}
			o.Done[n.Name] = append(o.Done[n.Name], c.ID)
			mu.Unlock()
		}
	}
	fail := func(node string, err error) {
		mu.Lock()
		defer mu.Unlock()
		o.Failed[node] = err
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(o.Failed) > 0
	}
	// One node's turn in a phase: its changes, between the phase's steps
	// before a node (failover) and after it (rejoin, health gate, pause).
	runTurn := func(n NodePlan, phase int) {
		if err := p.beforeNode(ctx, hosts, n, phase, report); err != nil {
			fail(n.Name, err)
			return
		}
		runNode(n, phase)
		mu.Lock()
		_, bad := o.Failed[n.Name]
		mu.Unlock()
		if bad {
			return
		}
		if err := p.afterNode(ctx, hosts, n, phase, report); err != nil {
			fail(n.Name, err)
		}
	}
	for phase, ph := range p.Phases {
		for _, batch := range ph.batchesOf(serialOrder(p, ph)) {
			if failed() || ctx.Err() != nil {
				break
			}
			for _, n := range batch {
				if hasPhase(n, phase) {
					wg.Add(1)
					go func() { defer wg.Done(); runTurn(n, phase) }()
				}
			}
			wg.Wait()
		}
	}
	o.Stopped = ctx.Err() != nil
	for _, n := range p.Nodes {
		done := map[string]bool{}
		for _, id := range o.Done[n.Name] {
			done[id] = true
		}
		for _, c := range n.Changes {
			if !done[c.ID] {
				o.Skipped[n.Name] = append(o.Skipped[n.Name], c.ID)
			}
		}
	}
	return o
}

// unitOf turns "service:asperaredisd" into "asperaredisd".
func unitOf(id string) string {
	for i := len(id) - 1; i >= 0; i-- {
		if id[i] == ':' {
			return id[i+1:]
		}
	}
	return id
}

// serialOrder is the node order of a phase: the plan's order (primary
// first) or, for a rollout, replicas first and the primary last.
func serialOrder(p *Plan, ph Phase) []NodePlan {
	if ph.Order != "replicas-first" {
		return p.Nodes
	}
	var out []NodePlan
	var primary []NodePlan
	for _, n := range p.Nodes {
		if n.Name == p.Primary.Node {
			primary = append(primary, n)
		} else {
			out = append(out, n)
		}
	}
	return append(out, primary...)
}

func hasPhase(n NodePlan, phase int) bool {
	for _, c := range n.Changes {
		if c.Phase == phase {
			return true
		}
	}
	return false
}

// beforeNode moves the primary away from n when n's Redis is about to
// restart (a planned switchover instead of a failure).
func (p *Plan) beforeNode(ctx context.Context, hosts map[string]host.Host, n NodePlan, phase int, report func(Event)) error {
	ph := p.Phases[phase]
	if ph.Failover == "" {
		return nil
	}
	touches := false
	for _, c := range n.Changes {
		if c.Phase == phase && c.ID == "service:"+ph.Failover && (c.Action == modules.Restart || c.Action == modules.Stop) {
			touches = true
		}
	}
	if !touches {
		return nil
	}
	switch p.cluster.primaryOf(p.cluster.views(ctx, hosts)) {
	case "":
		return fmt.Errorf("%s: no majority of Sentinels names a primary now; not restarting its Redis", n.Name)
	case n.Name:
	default:
		return nil
	}
	start := time.Now()
	// Once started, the switchover runs to its end even on Ctrl-C: stopping
	// between the write pause and the failover would leave writes paused.
	to, err := p.cluster.failoverFrom(context.WithoutCancel(ctx), hosts, n.Name)
	if err == nil {
		p.cluster.handedOver(n.Name, to)
	}
	ev := &ResourceChange{ID: "failover", Kind: "cluster", Phase: phase, Change: &modules.Change{Action: modules.Run,
		Summary: fmt.Sprintf("SENTINEL FAILOVER: %s hands the primary role over before its Redis restarts", n.Name)}}
	if err == nil {
		ev.Summary += " (now " + to + ")"
	}
	report(Event{Node: n.Name, Change: ev, Err: err, Duration: time.Since(start)})
	return err
}

// afterNode waits for the cluster to be healthy again, then pauses when a
// Sentinel was started or reset on n.
func (p *Plan) afterNode(ctx context.Context, hosts map[string]host.Host, n NodePlan, phase int, report func(Event)) error {
	ph := p.Phases[phase]
	if to := p.cluster.handedOverTo(n.Name); to != "" {
		// The old primary restarted from a file with no replicaof: it says
		// role:master until Sentinel converts it, some 10-20 s later (a
		// second primary for clients that trust role:master, as HAProxy's
		// check does). Make it a replica now, as Sentinel would, and
		// persist that; after the restart its running config is its file,
		// so CONFIG REWRITE adds only replicaof.
		start := time.Now()
		err := p.cluster.rejoin(context.WithoutCancel(ctx), hosts[n.Name], n.Name, to)
		report(Event{Node: n.Name, Change: &ResourceChange{ID: "rejoin", Kind: "cluster", Phase: phase,
			Change: &modules.Change{Action: modules.Run, Summary: "REPLICAOF " + to + " and CONFIG REWRITE: the old primary rejoins as a replica"}},
			Err: err, Duration: time.Since(start)})
		if err != nil {
			return err
		}
	}
	if ph.Gate {
		start := time.Now()
		err := p.cluster.waitHealthy(ctx, hosts, n.Name)
		report(Event{Node: n.Name, Change: &ResourceChange{ID: "health-gate", Kind: "cluster", Phase: phase,
			Change: &modules.Change{Action: modules.Run, Summary: "wait until the cluster is healthy"}}, Err: err, Duration: time.Since(start)})
		if err != nil {
			return err
		}
	}
	if ph.PauseMs > 0 {
		for _, c := range n.Changes {
			if c.Phase == phase && contains(ph.PauseAfter, c.ID) && c.Action != modules.Enable {
				select {
				case <-time.After(time.Duration(ph.PauseMs) * time.Millisecond):
				case <-ctx.Done():
				}
				break
			}
		}
	}
	return nil
}
