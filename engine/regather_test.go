package engine

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/modules"
)

// liveSystem guesses one file per node, and once it has seen the facts
// asks for a second one: a render for the live state that reads what the
// first gather did not.
type liveSystem struct{ echoSystem }

func (liveSystem) Guess() map[string]any { return map[string]any{"text": "x"} }
func (liveSystem) Observe(map[string]*Facts) (Observation, error) {
	return Observation{Inputs: map[string]any{"text": "x", "extra": []string{"b"}}}, nil
}

// A resource that only the second render has is gathered before the diff:
// its file is already right on the node, so nothing changes for it. Diffed
// against the first gather's facts, it would be planned as a file to create.
func TestSecondRenderIsGathered(t *testing.T) {
	dir := t.TempDir()
	cfg, cl := echoCluster(t, 2)
	for _, n := range cl.Nodes {
		if err := os.WriteFile(filepath.Join(dir, n.Name+"-b"), []byte("b\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	drivers.Lock()
	drivers.m["test-live"] = driverFunc(func() System { return liveSystem{echoSystem{plain{cl}, dir}} })
	drivers.Unlock()
	defer func() { drivers.Lock(); delete(drivers.m, "test-live"); drivers.Unlock() }()
	cl.Driver = "test-live"
	s, err := Prepare(context.Background(), cfg, Options{NoFingerprints: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range s.Plans[0].Nodes {
		var ids []string
		for _, c := range n.Changes {
			ids = append(ids, c.ID)
			if c.ID == "file:b" {
				t.Errorf("%s: file:b planned (%s %s) though the node holds it: diffed against a fact never gathered", n.Name, c.Action, c.Summary)
			}
		}
		if len(ids) != 1 || ids[0] != "file:a" || n.Changes[0].Action != modules.Create {
			t.Errorf("%s: changes %q, want only file:a created", n.Name, ids)
		}
	}
}

// driverFunc is a Driver for tests.
type driverFunc func() System

func (f driverFunc) Open(*config.Cluster) (System, error) { return f(), nil }
