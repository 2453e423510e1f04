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
// the procedure. Within a phase the nodes work in parallel, or one by one
// (primary first) for a serial phase. The first failure ends the run after
// the phase's in-flight changes. A cancelled ctx (Ctrl-C) lets the change in
// progress finish (a file write is atomic either way) and stops.
func Apply(ctx context.Context, p *Plan, hosts map[string]host.Host, report func(Event)) *Outcome {
	o := &Outcome{Done: map[string][]string{}, Failed: map[string]error{}, Skipped: map[string][]string{}}
	var mu sync.Mutex
	work := context.WithoutCancel(ctx)

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
	for phase := range p.Phases {
		if len(o.Failed) > 0 || ctx.Err() != nil {
			break
		}
		if p.Phases[phase].Serial {
			for _, n := range p.Nodes {
				if len(o.Failed) > 0 || ctx.Err() != nil {
					break
				}
				runNode(n, phase)
			}
			continue
		}
		for _, n := range p.Nodes {
			wg.Add(1)
			go func() { defer wg.Done(); runNode(n, phase) }()
		}
		wg.Wait()
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
