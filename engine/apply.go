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
	a := &applier{p: p, hosts: hosts, ctx: ctx, work: context.WithoutCancel(ctx), report: serialized(report),
		o: &Outcome{Done: map[string][]string{}, Failed: map[string]error{}, Skipped: map[string][]string{}}}
	if p.system != nil {
		a.rollout = p.system.Rollout(p, hosts, p.secret)
	}
	a.markPending()
	for phase, ph := range p.Phases {
		a.runPhase(phase, ph)
	}
	a.o.Stopped = ctx.Err() != nil
	a.listSkipped()
	return a.o
}

// applier is one Apply: the plan, its connections and what was done.
type applier struct {
	p       *Plan
	hosts   map[string]host.Host
	rollout Rollout // nil: no hooks
	ctx     context.Context
	work    context.Context // ctx without its cancel: a started change finishes
	report  func(Event)

	mu sync.Mutex
	o  *Outcome
}

// serialized makes report safe to call from the nodes' goroutines: the
// caller gets one event at a time.
func serialized(report func(Event)) func(Event) {
	var mu sync.Mutex
	return func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		report(e)
	}
}

func (a *applier) fail(node string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.o.Failed[node] = err
}

func (a *applier) failed(node string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if node == "" {
		return len(a.o.Failed) > 0
	}
	_, bad := a.o.Failed[node]
	return bad
}

// markPending writes down, on each node, the restarts it owes before
// anything they depend on changes, so a later failure cannot lose them.
func (a *applier) markPending() {
	var wg sync.WaitGroup
	for _, n := range a.p.Nodes {
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
			res, err := a.hosts[n.Name].Run(a.work, modules.MarkPending(units), nil)
			if err == nil && res.Code != 0 {
				err = fmt.Errorf("recording pending restarts: exit %d", res.Code)
			}
			if err != nil {
				a.fail(n.Name, err)
			}
		}()
	}
	wg.Wait()
}

// runPhase runs the phase's batches one after the other, a batch's nodes
// in parallel, until one fails.
func (a *applier) runPhase(phase int, ph Phase) {
	var wg sync.WaitGroup
	for _, batch := range ph.batchesOf(a.order(ph)) {
		if a.failed("") || a.ctx.Err() != nil {
			return
		}
		for _, n := range batch {
			if hasPhase(n, phase) {
				wg.Add(1)
				go func() { defer wg.Done(); a.runTurn(n, phase, ph) }()
			}
		}
		wg.Wait()
	}
}

// runTurn is one node's turn in a phase: its changes, between the driver's
// steps before a node and after it, then the phase's pause.
func (a *applier) runTurn(n NodePlan, phase int, ph Phase) {
	changes := phaseChanges(n, phase)
	if a.rollout != nil {
		if err := a.rollout.Before(a.ctx, n.Name, phase, changes, a.report); err != nil {
			a.fail(n.Name, err)
			return
		}
	}
	a.runChanges(n.Name, changes)
	if a.failed(n.Name) {
		return
	}
	if a.rollout != nil {
		if err := a.rollout.After(a.ctx, n.Name, phase, changes, a.report); err != nil {
			a.fail(n.Name, err)
			return
		}
	}
	a.pause(ph, changes)
}

// runChanges applies a node's changes of one phase in order, up to the
// first failure. Consecutive changes that join (modules.Joins: services
// to enable and start) run as one command; when that fails, each runs on
// its own, so the failure is the change's that fails.
func (a *applier) runChanges(node string, changes []*ResourceChange) {
	for i := 0; i < len(changes); {
		j := i + 1
		for j < len(changes) && modules.Joins(changes[j-1].Change, changes[j].Change) {
			j++
		}
		if j-i > 1 && a.runJoined(node, changes[i:j]) {
			i = j
			continue
		}
		for ; i < j; i++ {
			if !a.runOne(node, changes[i]) {
				return
			}
		}
	}
}

// runOne applies one change; false when it failed or apply was stopped.
func (a *applier) runOne(node string, c *ResourceChange) bool {
	if a.ctx.Err() != nil {
		return false
	}
	starting(a.ctx, node, c)
	start := time.Now()
	err := c.Apply(a.work, a.hosts[node])
	a.report(Event{Node: node, Change: c, Err: err, Duration: time.Since(start)})
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.o.Failed[node] = fmt.Errorf("%s: %w", c.ID, err)
		return false
	}
	a.o.Done[node] = append(a.o.Done[node], c.ID)
	return true
}

// runJoined applies cs with one command; false (nothing recorded) when it
// failed or apply was stopped.
func (a *applier) runJoined(node string, cs []*ResourceChange) bool {
	if a.ctx.Err() != nil {
		return false
	}
	mods := make([]*modules.Change, len(cs))
	for i, c := range cs {
		mods[i] = c.Change
	}
	starting(a.ctx, node, cs[0])
	start := time.Now()
	if modules.ApplyJoined(a.work, a.hosts[node], mods) != nil {
		return false
	}
	d := time.Since(start)
	for _, c := range cs {
		a.report(Event{Node: node, Change: c, Duration: d})
		a.mu.Lock()
		a.o.Done[node] = append(a.o.Done[node], c.ID)
		a.mu.Unlock()
	}
	return true
}

// pause waits the phase's pause after a node on which one of PauseAfter
// changed (more than its enablement).
func (a *applier) pause(ph Phase, changes []*ResourceChange) {
	if ph.PauseMs <= 0 {
		return
	}
	for _, c := range changes {
		if contains(ph.PauseAfter, c.ID) && c.Action != modules.Enable {
			select {
			case <-time.After(time.Duration(ph.PauseMs) * time.Millisecond):
			case <-a.ctx.Done():
			}
			return
		}
	}
}

// listSkipped records, per node, the changes that were not done.
func (a *applier) listSkipped() {
	for _, n := range a.p.Nodes {
		done := map[string]bool{}
		for _, id := range a.o.Done[n.Name] {
			done[id] = true
		}
		for _, c := range n.Changes {
			if !done[c.ID] {
				a.o.Skipped[n.Name] = append(a.o.Skipped[n.Name], c.ID)
			}
		}
	}
}

// unitOf turns "service:NAME" into "NAME".
func unitOf(id string) string {
	for i := len(id) - 1; i >= 0; i-- {
		if id[i] == ':' {
			return id[i+1:]
		}
	}
	return id
}

// order is the node order of a phase: the plan's, or the driver's for a
// phase that names an order.
func (a *applier) order(ph Phase) []NodePlan {
	return phaseOrder(a.p, ph, a.rollout)
}

func phaseOrder(p *Plan, ph Phase, r Rollout) []NodePlan {
	if ph.Order == "" || r == nil {
		return p.Nodes
	}
	byName := map[string]NodePlan{}
	names := make([]string, len(p.Nodes))
	for i, n := range p.Nodes {
		byName[n.Name], names[i] = n, n.Name
	}
	var out []NodePlan
	for _, name := range r.Order(ph, names) {
		if n, ok := byName[name]; ok {
			out = append(out, n)
			delete(byName, name)
		}
	}
	for _, n := range p.Nodes { // a node the driver left out still has its turn
		if _, ok := byName[n.Name]; ok {
			out = append(out, n)
		}
	}
	return out
}

func hasPhase(n NodePlan, phase int) bool {
	for _, c := range n.Changes {
		if c.Phase == phase {
			return true
		}
	}
	return false
}

// phaseChanges are n's changes of one phase, in order.
func phaseChanges(n NodePlan, phase int) []*ResourceChange {
	var out []*ResourceChange
	for _, c := range n.Changes {
		if c.Phase == phase {
			out = append(out, c)
		}
	}
	return out
}
