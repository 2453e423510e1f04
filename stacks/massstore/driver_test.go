package massstore_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/stacks/massstore"
)

// render loads a config folder holding text as its only file and renders
// its one stack: the resources of each node by id.
func render(t *testing.T, text string) (engine.System, map[string]map[string]json.RawMessage) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ms.cue"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, probs, err := config.Load(dir)
	if err != nil || len(probs) > 0 {
		t.Fatalf("load: %v %v", err, probs)
	}
	cl := cfg.Clusters[0]
	if cl.Driver != massstore.Name {
		t.Fatalf("driver %q, want %q", cl.Driver, massstore.Name)
	}
	sys, err := engine.Open(cl)
	if err != nil {
		t.Fatal(err)
	}
	r, err := engine.Render(cfg.Context, cl, sys, sys.Guess())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]json.RawMessage{}
	for _, n := range r.Nodes {
		out[n.Name] = map[string]json.RawMessage{}
		for _, res := range n.Resources {
			out[n.Name][res.ID] = res.Spec
		}
	}
	return sys, out
}

func content(t *testing.T, spec json.RawMessage) string {
	t.Helper()
	var f struct{ Content string }
	if err := json.Unmarshal(spec, &f); err != nil {
		t.Fatal(err)
	}
	return f.Content
}

const header = `package ms

import "hastack.dev/stacks/massstore"

stacks: media: massstore.#Stack & {
	servers: [{name: "ms1", ip: "10.0.0.11"}, {name: "ms2", ip: "10.0.0.12"}]
`

// TestRenderWitness: with a witness every server's Galera lists the
// three voters, each of weight 1; the witness runs garbd only, on the
// servers' addresses; only the first server may bootstrap; one unit per
// worker instance on the server of its placement, each restarted on
// failure; and the plan has no note.
func TestRenderWitness(t *testing.T) {
	sys, nodes := render(t, header+`	witness: {name: "arb", ip: "10.0.0.13"}
	processes: datamover: {instances: 3, placement: ["ms1", "ms2", "ms2"]}
}
`)
	if len(nodes) != 3 {
		t.Fatalf("%d nodes, want ms1, ms2, arb", len(nodes))
	}
	for _, n := range []string{"ms1", "ms2"} {
		cnf := content(t, nodes[n]["file:/etc/massstore/galera.cnf"])
		if !strings.Contains(cnf, "wsrep_cluster_address=gcomm://10.0.0.11,10.0.0.12,10.0.0.13\n") || !strings.Contains(cnf, "pc.weight=1\"") {
			t.Errorf("%s galera.cnf:\n%s", n, cnf)
		}
	}
	if start := content(t, nodes["ms1"]["file:/etc/massstore/galera-start"]); !strings.Contains(start, "[ true = true ]") || !strings.Contains(start, "for p in 10.0.0.12 10.0.0.13; do") {
		t.Errorf("ms1 does not bootstrap a new cluster when no peer answers:\n%s", start)
	}
	start := content(t, nodes["ms2"]["file:/etc/massstore/galera-start"])
	if !strings.Contains(start, "[ false = true ]") {
		t.Errorf("ms2 may bootstrap:\n%s", start)
	}
	// After a crash it recovers its position (the e2e crash test shows the
	// rejoin by IST it buys), and the script is valid bash.
	if !strings.Contains(start, "--wsrep-recover") || !strings.Contains(start, "${pos:+--wsrep-start-position=$pos}") {
		t.Errorf("galera-start does not recover the position after a crash:\n%s", start)
	}
	if out, err := exec.Command("bash", "-n", "-c", start).CombinedOutput(); err != nil {
		t.Errorf("galera-start: bash -n: %v: %s", err, out)
	}
	garbd := content(t, nodes["arb"]["file:/etc/systemd/system/massstore-garbd.service"])
	if !strings.Contains(garbd, "--address gcomm://10.0.0.11,10.0.0.12 ") || !strings.Contains(garbd, "Restart=on-failure") {
		t.Errorf("garbd unit:\n%s", garbd)
	}
	if _, ok := nodes["arb"]["service:massstore-galera"]; ok {
		t.Error("the witness runs a database")
	}
	want := map[string][]string{"ms1": {"massstore-datamover-1"}, "ms2": {"massstore-datamover-2", "massstore-datamover-3"}}
	for n, units := range want {
		for _, u := range units {
			unit := content(t, nodes[n]["file:/etc/systemd/system/"+u+".service"])
			if !strings.Contains(unit, "Restart=on-failure\n") || !strings.Contains(unit, "ExecStart=/opt/massstore/bin/msworker datamover "+n+"-"+strings.TrimPrefix(u, "massstore-")) {
				t.Errorf("%s %s:\n%s", n, u, unit)
			}
			if _, ok := nodes[n]["service:"+u]; !ok {
				t.Errorf("%s does not run %s", n, u)
			}
		}
	}
	if _, ok := nodes["ms1"]["service:massstore-datamover-2"]; ok {
		t.Error("ms1 runs ms2's datamover")
	}
	o, err := sys.Observe(nil)
	if err != nil || len(o.Notes) != 0 {
		t.Errorf("notes %q, %v; want none", o.Notes, err)
	}
}

// TestRenderSplitBrainAccepted: no witness, the risk accepted: the first
// server gets the deciding vote (pc.weight=2), the voters are the two
// servers, and every plan's header says what that costs.
func TestRenderSplitBrainAccepted(t *testing.T) {
	sys, nodes := render(t, header+`	acceptSplitBrainRisk: true
}
`)
	if len(nodes) != 2 {
		t.Fatalf("%d nodes, want ms1 and ms2", len(nodes))
	}
	for n, w := range map[string]string{"ms1": "pc.weight=2", "ms2": "pc.weight=1"} {
		cnf := content(t, nodes[n]["file:/etc/massstore/galera.cnf"])
		if !strings.Contains(cnf, w+"\"") || !strings.Contains(cnf, "gcomm://10.0.0.11,10.0.0.12\n") {
			t.Errorf("%s galera.cnf, want %s:\n%s", n, w, cnf)
		}
	}
	o, err := sys.Observe(nil)
	if err != nil || len(o.Notes) != 1 || !strings.Contains(o.Notes[0], "ms1 holds the deciding vote (pc.weight=2): the database stops taking writes whenever ms1 is gone or cut off") {
		t.Errorf("notes %q, %v", o.Notes, err)
	}
}
