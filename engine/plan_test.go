package engine

import (
	"encoding/json"
	"testing"
)

// A plan's JSON holds the driver's Live fields inline, between cluster and
// phases, as the HSTS plans always had "design" and "primary" there; reading
// it back gives the same Live.
func TestPlanJSONInlinesLive(t *testing.T) {
	p := &Plan{Cluster: "c", Live: json.RawMessage(`{"design":"sentinel","primary":{"node":"n1"}}`),
		Phases: []Phase{{Name: "p"}}, Nodes: []NodePlan{{Name: "n1", Address: "a:22"}}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cluster":"c","design":"sentinel","primary":{"node":"n1"},"phases":[{"name":"p"}],"nodes":[{"name":"n1","address":"a:22","fingerprint":"","changes":null}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if string(back.Live) != string(p.Live) || back.Cluster != "c" || len(back.Nodes) != 1 || back.Phases[0].Name != "p" {
		t.Errorf("read back: %+v, Live %s", back, back.Live)
	}
	// A plain system's plan has no Live and no extra keys.
	b, _ = json.Marshal(Plan{Cluster: "s"})
	if string(b) != `{"cluster":"s","phases":null,"nodes":null}` {
		t.Errorf("plain plan: %s", b)
	}
}
