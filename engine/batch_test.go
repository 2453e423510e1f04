package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

var unitWord = regexp.MustCompile(`\bu[0-9]+\b`)

func names(batches [][]NodePlan) string {
	var out []string
	for _, b := range batches {
		var ns []string
		for _, n := range b {
			ns = append(ns, n.Name)
		}
		out = append(out, strings.Join(ns, " "))
	}
	return strings.Join(out, " | ")
}

func nodePlans(n int) []NodePlan {
	var out []NodePlan
	for i := 1; i <= n; i++ {
		out = append(out, NodePlan{Name: fmt.Sprintf("n%d", i)})
	}
	return out
}

// phaseOf decodes a phase as a stack renders it.
func phaseOf(t *testing.T, js string) Phase {
	t.Helper()
	var ph Phase
	if err := json.Unmarshal([]byte(js), &ph); err != nil {
		t.Fatal(err)
	}
	if err := checkPhases([]Phase{ph}, testOrders); err != nil {
		t.Fatal(err)
	}
	return ph
}

// testOrders are the orders of lastSystem's phases.
var testOrders = []string{"replicas-first"}

// lastSystem is a driver's system whose "replicas-first" order puts the
// node last last, as the HSTS driver does with the primary.
type lastSystem struct {
	plain
	last string
}

func (s lastSystem) Orders() []string { return testOrders }
func (s lastSystem) Rollout(*Plan, map[string]host.Host, secret.Secret) Rollout {
	return lastRollout{s.last}
}

type lastRollout struct{ last string }

func (r lastRollout) Order(ph Phase, nodes []string) []string {
	if ph.Order != "replicas-first" {
		return nodes
	}
	var out []string
	for _, n := range nodes {
		if n != r.last {
			out = append(out, n)
		}
	}
	return append(out, r.last)
}
func (lastRollout) Before(context.Context, string, int, []*ResourceChange, func(Event)) error {
	return nil
}
func (lastRollout) After(context.Context, string, int, []*ResourceChange, func(Event)) error {
	return nil
}

// The batches follow Ansible's serial list: sizes in turn, the last one
// repeating, percentages of the phase's nodes rounded down (at least 1).
func TestBatchesOf(t *testing.T) {
	for _, tc := range []struct {
		phase string
		nodes int
		want  string
	}{
		{`{"name": "p"}`, 5, "n1 n2 n3 n4 n5"},
		{`{"name": "p", "serial": true}`, 3, "n1 | n2 | n3"},
		{`{"name": "p", "batches": [1]}`, 3, "n1 | n2 | n3"},
		{`{"name": "p", "batches": [1, "100%"]}`, 5, "n1 | n2 n3 n4 n5"},
		{`{"name": "p", "batches": [1, "100%"]}`, 1, "n1"},
		{`{"name": "p", "batches": [1, "100%"]}`, 0, ""},
		{`{"name": "p", "batches": [2]}`, 5, "n1 n2 | n3 n4 | n5"},
		{`{"name": "p", "batches": [1, 2, 3]}`, 9, "n1 | n2 n3 | n4 n5 n6 | n7 n8 n9"},
		{`{"name": "p", "batches": ["30%"]}`, 10, "n1 n2 n3 | n4 n5 n6 | n7 n8 n9 | n10"},
		{`{"name": "p", "batches": ["10%", "50%"]}`, 5, "n1 | n2 n3 | n4 n5"},
		{`{"name": "p", "batches": ["1%"]}`, 3, "n1 | n2 | n3"},
		{`{"name": "p", "batches": [10]}`, 3, "n1 n2 n3"},
	} {
		got := names(phaseOf(t, tc.phase).batchesOf(nodePlans(tc.nodes)))
		if got != tc.want {
			t.Errorf("%s on %d nodes: got %q, want %q", tc.phase, tc.nodes, got, tc.want)
		}
	}
}

// A replicas-first phase in batches puts the primary in the last batch.
func TestBatchesReplicasFirst(t *testing.T) {
	p := &Plan{Nodes: nodePlans(5)}
	ph := phaseOf(t, `{"name": "p", "batches": [2], "order": "replicas-first"}`)
	if got, want := names(ph.batchesOf(phaseOrder(p, ph, lastRollout{"n1"}))), "n2 n3 | n4 n5 | n1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A batch size is written back as the stack wrote it (plan -json).
func TestBatchJSONRoundTrip(t *testing.T) {
	ph := phaseOf(t, `{"name": "p", "batches": [1, "100%", 3]}`)
	b, err := json.Marshal(ph.Batches)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `[1,"100%",3]` {
		t.Errorf("got %s", b)
	}
}

// A bad phase is an error naming the phase and the value.
func TestCheckPhasesErrors(t *testing.T) {
	for _, tc := range []struct{ phase, want string }{
		{`{"name": "start", "batches": [0]}`, `phase 1 (start): batch size 0: want a number of nodes of at least 1`},
		{`{"name": "start", "batches": [-2]}`, `batch size -2`},
		{`{"name": "start", "batches": [1.5]}`, `batch size 1.5`},
		{`{"name": "start", "batches": ["all"]}`, `batch size "all"`},
		{`{"name": "start", "batches": ["0%"]}`, `batch size "0%"`},
		{`{"name": "start", "batches": ["150%"]}`, `batch size "150%"`},
		{`{"name": "start", "batches": ["x%"]}`, `batch size "x%"`},
		{`{"name": "start", "batches": [true]}`, `batch size true`},
		{`{"name": "start", "batches": [1], "serial": true}`, `serial and batches are both set`},
		{`{"name": "start", "order": "replica-first"}`, `order "replica-first"`},
	} {
		var ph Phase
		if err := json.Unmarshal([]byte(tc.phase), &ph); err != nil {
			t.Fatalf("%s: %v", tc.phase, err)
		}
		err := checkPhases([]Phase{ph}, testOrders)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.phase, err, tc.want)
		}
	}
}

// decodeRendered refuses a stack whose phases are wrong, naming the cluster.
func TestDecodeRenderedChecksBatches(t *testing.T) {
	cl := &config.Cluster{Name: "c1"}
	out := &rendered{Phases: json.RawMessage(`[{"name": "a"}, {"name": "start", "batches": [1, "all"]}]`), Nodes: json.RawMessage(`[]`)}
	_, err := decodeRendered(cl, plain{cl}, nil, out)
	if err == nil || !strings.Contains(err.Error(), `cluster c1: phase 2 (start): batch size "all"`) {
		t.Errorf("got %v", err)
	}
}

// recorder is a fake node: it records every command it runs. The nodes
// that meet names for a unit wait for each other (a second at most) to
// prove they run together: one that waited in vain logs "alone". The node
// solo names for a unit waits a moment to give others the chance to start
// it too, which would show in the log between its start and its end.
type recorder struct {
	name string
	log  *events
}

type events struct {
	mu      sync.Mutex
	lines   []string
	arrived map[string]int
	meet    map[string][]string // unit → the nodes that must run it together
	solo    map[string]string   // unit → the node that must run it alone
	fail    map[string]bool     // "node unit" that fails
}

func newEvents() *events {
	return &events{arrived: map[string]int{}, meet: map[string][]string{}, solo: map[string]string{}, fail: map[string]bool{}}
}

func (r recorder) Name() string { return r.name }
func (r recorder) Close() error { return nil }
func (r recorder) WriteFile(context.Context, host.File) error {
	return fmt.Errorf("no files here")
}

func (r recorder) Run(_ context.Context, cmd string, _ io.Reader) (host.Result, error) {
	// The unit is the word u<phase> wherever the service module puts it.
	unit := unitWord.FindString(cmd)
	e := r.log
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lines = append(e.lines, "start "+r.name+" "+unit)
	if want := len(e.meet[unit]); slices.Contains(e.meet[unit], r.name) {
		e.arrived[unit]++
		deadline := time.Now().Add(time.Second) // only so a wrong order fails instead of hanging
		for e.arrived[unit] < want && time.Now().Before(deadline) {
			e.mu.Unlock()
			time.Sleep(time.Millisecond)
			e.mu.Lock()
		}
		if e.arrived[unit] < want {
			e.lines = append(e.lines, "alone "+r.name+" "+unit)
		}
	}
	if e.solo[unit] == r.name {
		e.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
		e.mu.Lock()
	}
	e.lines = append(e.lines, "end "+r.name+" "+unit)
	if e.fail[r.name+" "+unit] {
		return host.Result{Code: 1}, nil
	}
	return host.Result{}, nil
}

// startPlan is a plan of n nodes (n1 primary) where every node starts one
// unit per phase, named after its phase.
func startPlan(t *testing.T, n int, phases ...string) *Plan {
	t.Helper()
	p := &Plan{system: lastSystem{last: "n1"}}
	for _, js := range phases {
		p.Phases = append(p.Phases, phaseOf(t, js))
	}
	svc, err := modules.Lookup("service")
	if err != nil {
		t.Fatal(err)
	}
	for _, np := range nodePlans(n) {
		for i := range p.Phases {
			res := modules.Resource{ID: fmt.Sprintf("service:u%d", i), Kind: "service", Phase: i, Spec: json.RawMessage(fmt.Sprintf(`{"unit": "u%d", "running": true}`, i))}
			c, err := svc.Diff(&res, &modules.Fact{Node: &modules.NodeFacts{Units: map[string]modules.UnitState{}}}, &modules.Env{Stopped: map[string]bool{}, Node: np.Name})
			if err != nil || c == nil || c.Action != modules.Start {
				t.Fatalf("service diff: %v %v", c, err)
			}
			np.Changes = append(np.Changes, &ResourceChange{ID: res.ID, Kind: res.Kind, Phase: i, Change: c})
		}
		p.Nodes = append(p.Nodes, np)
	}
	return p
}

func hostsFor(p *Plan, e *events) map[string]host.Host {
	hosts := map[string]host.Host{}
	for _, n := range p.Nodes {
		hosts[n.Name] = recorder{name: n.Name, log: e}
	}
	return hosts
}

// about keeps the log lines about unit, without it.
func (e *events) about(unit string) []string {
	var out []string
	for _, l := range e.lines {
		if strings.HasSuffix(l, " "+unit) {
			out = append(out, strings.TrimSuffix(l, " "+unit))
		}
	}
	return out
}

// Apply runs [1, "100%"] as the first node alone, then the others
// together; a serial phase one node at a time, in its order.
func TestApplyBatches(t *testing.T) {
	p := startPlan(t, 5,
		`{"name": "together"}`,
		`{"name": "primary, then the others", "batches": [1, "100%"]}`,
		`{"name": "rollout", "serial": true, "order": "replicas-first"}`,
	)
	e := newEvents()
	e.meet["u0"] = []string{"n1", "n2", "n3", "n4", "n5"}
	e.meet["u1"] = []string{"n2", "n3", "n4", "n5"}
	e.solo["u1"] = "n1"
	o := Apply(context.Background(), p, hostsFor(p, e), func(Event) {})
	if err := o.Err(); err != nil {
		t.Fatalf("apply: %v %v", err, o.Failed)
	}
	for _, l := range e.lines {
		if strings.HasPrefix(l, "alone ") {
			t.Errorf("%s did not run together with the others of its batch", strings.TrimPrefix(l, "alone "))
		}
	}
	u1 := e.about("u1")
	if !slices.Equal(u1[:2], []string{"start n1", "end n1"}) {
		t.Errorf("the primary does not start before the others: %q", u1)
	}
	want := []string{"start n2", "end n2", "start n3", "end n3", "start n4", "end n4", "start n5", "end n5", "start n1", "end n1"}
	if u2 := e.about("u2"); !slices.Equal(u2, want) {
		t.Errorf("serial replicas-first phase ran %q, want %q", u2, want)
	}
}

// When the first batch fails, the next one does not start: a primary that
// did not start gets no replicas.
func TestApplyBatchFailureStops(t *testing.T) {
	p := startPlan(t, 3, `{"name": "primary, then the others", "batches": [1, "100%"]}`)
	e := newEvents()
	e.fail["n1 u0"] = true
	o := Apply(context.Background(), p, hostsFor(p, e), func(Event) {})
	if o.Failed["n1"] == nil {
		t.Fatalf("n1 did not fail: %v", o.Failed)
	}
	if got := e.about("u0"); !slices.Equal(got, []string{"start n1", "end n1"}) {
		t.Errorf("after the first batch failed, ran %q", got)
	}
	for _, n := range []string{"n2", "n3"} {
		if !slices.Equal(o.Skipped[n], []string{"service:u0"}) {
			t.Errorf("%s: skipped %q", n, o.Skipped[n])
		}
	}
}
