package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/modules"
)

// execLog is a node that logs each command it runs and fails those that
// start the unit named bad.
type execLog struct {
	mu   sync.Mutex
	cmds []string
	bad  string
}

func (*execLog) Name() string                               { return "n1" }
func (*execLog) Close() error                               { return nil }
func (*execLog) WriteFile(context.Context, host.File) error { return fmt.Errorf("no files here") }
func (e *execLog) Run(_ context.Context, cmd string, _ io.Reader) (host.Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cmds = append(e.cmds, cmd)
	for _, l := range strings.Split(cmd, "\n") {
		if strings.HasPrefix(l, "systemctl start ") && e.bad != "" && slices.Contains(strings.Fields(l), e.bad) {
			return host.Result{Code: 1, Stderr: []byte("Job for " + e.bad + " failed.\n")}, nil
		}
	}
	return host.Result{}, nil
}

// servicePlan is one node's plan of one phase: a service change per spec,
// diffed against a node where no unit runs or is enabled.
func servicePlan(t *testing.T, specs ...string) *Plan {
	t.Helper()
	svc, err := modules.Lookup("service")
	if err != nil {
		t.Fatal(err)
	}
	np := NodePlan{Name: "n1"}
	for _, spec := range specs {
		var s struct{ Unit string }
		json.Unmarshal([]byte(spec), &s)
		res := modules.Resource{ID: "service:" + s.Unit, Kind: "service", Spec: json.RawMessage(spec)}
		env := &modules.Env{Stopped: map[string]bool{}, Node: "n1"}
		if strings.Contains(spec, "restart") { // a watched resource changed
			env.Triggered = []string{"file:/etc/x"}
		}
		f := &modules.Fact{Node: &modules.NodeFacts{Units: map[string]modules.UnitState{"ur": {Active: "active", Enabled: "enabled"}}}}
		c, err := svc.Diff(&res, f, env)
		if err != nil || c == nil {
			t.Fatalf("service diff of %s: %v %v", spec, c, err)
		}
		np.Changes = append(np.Changes, &ResourceChange{ID: res.ID, Kind: res.Kind, Change: c})
	}
	return &Plan{Phases: []Phase{{Name: "start"}}, Nodes: []NodePlan{np}}
}

// A node's consecutive service starts and enables run as one exec: one
// systemctl enable, one systemctl start, one rm of the markers. A restart
// between them runs on its own and splits them.
func TestApplyJoinsServiceStarts(t *testing.T) {
	p := servicePlan(t, `{"unit": "u1", "running": true}`, `{"unit": "u2", "enabled": true, "running": true}`,
		`{"unit": "u3", "enabled": true}`, `{"unit": "ur", "running": true, "restart": 1}`, `{"unit": "u4", "running": true}`)
	e := &execLog{}
	o := Apply(context.Background(), p, map[string]host.Host{"n1": e}, func(Event) {})
	if err := o.Err(); err != nil {
		t.Fatalf("apply: %v %v", err, o.Failed)
	}
	if want := []string{"service:u1", "service:u2", "service:u3", "service:ur", "service:u4"}; !slices.Equal(o.Done["n1"], want) {
		t.Errorf("done %q, want %q", o.Done["n1"], want)
	}
	// The first exec records the restart ur owes (markPending).
	if len(e.cmds) != 4 || !strings.HasPrefix(e.cmds[0], "mkdir -p /var/lib/hastack/pending") {
		t.Fatalf("%d execs, want 4 (ur's marker, u1-u3 joined, ur, u4):\n%s", len(e.cmds), strings.Join(e.cmds, "\n---\n"))
	}
	e.cmds = e.cmds[1:]
	for _, want := range []string{"\nsystemctl enable u2 u3\n", "\nsystemctl start u1 u2\n", "\nrm -f /var/lib/hastack/pending/u1 /var/lib/hastack/pending/u2 /var/lib/hastack/pending/u3\n"} {
		if !strings.Contains(e.cmds[0], want) {
			t.Errorf("the joined exec has no %q:\n%s", want, e.cmds[0])
		}
	}
	if !strings.Contains(e.cmds[1], "systemctl restart ur") || strings.Contains(e.cmds[2], "ur") {
		t.Errorf("the restart did not run alone, between:\n%s", strings.Join(e.cmds, "\n---\n"))
	}
}

// When the joined start fails, each unit starts on its own: the failure is
// the unit's that fails, the ones before it are done, the rest skipped.
func TestApplyJoinedFailureIsTheUnits(t *testing.T) {
	p := servicePlan(t, `{"unit": "u1", "running": true}`, `{"unit": "ubad", "running": true}`, `{"unit": "u3", "running": true}`)
	e := &execLog{bad: "ubad"}
	o := Apply(context.Background(), p, map[string]host.Host{"n1": e}, func(Event) {})
	err := o.Failed["n1"]
	if err == nil || !strings.HasPrefix(err.Error(), "service:ubad: ") {
		t.Fatalf("failed: %v, want service:ubad's failure", err)
	}
	if !slices.Equal(o.Done["n1"], []string{"service:u1"}) || !slices.Equal(o.Skipped["n1"], []string{"service:ubad", "service:u3"}) {
		t.Errorf("done %q, skipped %q", o.Done["n1"], o.Skipped["n1"])
	}
	if len(e.cmds) != 3 || !strings.Contains(e.cmds[0], "systemctl start u1 ubad u3\n") {
		t.Errorf("want the joined start, then u1's and ubad's own:\n%s", strings.Join(e.cmds, "\n---\n"))
	}
}
