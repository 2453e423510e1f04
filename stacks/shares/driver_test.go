package shares

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/modules"
)

func loadTier(t *testing.T) (*config.Config, *config.Cluster, engine.System) {
	t.Helper()
	return loadDir(t, "testdata/type2")
}

// loadDir loads the tier of the config folder dir and opens its system.
func loadDir(t *testing.T, dir string) (*config.Config, *config.Cluster, engine.System) {
	t.Helper()
	cfg, probs, err := config.Load(dir)
	if err != nil || len(probs) > 0 {
		t.Fatal(err, probs)
	}
	cl := cfg.Clusters[0]
	sys, err := engine.Open(cl)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, cl, sys
}

// services lists node's service units that are to run, in order.
func services(t *testing.T, r *engine.Rendered, node string) []string {
	t.Helper()
	var out []string
	for _, n := range r.Nodes {
		if n.Name != node {
			continue
		}
		for _, res := range n.Resources {
			if res.Kind != "service" {
				continue
			}
			var s struct {
				Unit    string `json:"unit"`
				Enabled bool   `json:"enabled"`
				Running bool   `json:"running"`
			}
			json.Unmarshal(res.Spec, &s)
			if s.Running {
				out = append(out, s.Unit)
			}
			if s.Enabled && slices.Contains(ActiveOnly, s.Unit) {
				t.Errorf("%s: %s enabled at boot", node, s.Unit)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestPlacement: 001's table by its location column, for the node ACM
// names: the active-only units on that node and nowhere else.
func TestPlacement(t *testing.T) {
	cfg, cl, sys := loadTier(t)
	for _, active := range []string{"web1", "web2"} {
		r, err := engine.Render(cfg.Context, cl, sys, map[string]any{"active": active})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"web1", "web2"} {
			want := []string{"acm", "asperahttpd", "asperanoded", "chrony", "nginx"}
			if n == active {
				want = append(want, ActiveOnly...)
			}
			slices.Sort(want)
			if got := services(t, r, n); !slices.Equal(got, want) {
				t.Errorf("active %s: %s runs %v, want %v", active, n, got, want)
			}
		}
	}
}

func statusFacts(status string, running map[string][]string) map[string]*engine.Facts {
	out := map[string]*engine.Facts{}
	for _, n := range []string{"web1", "web2"} {
		nf := &modules.NodeFacts{Files: map[string]*modules.FileFact{}, Units: map[string]modules.UnitState{}}
		if status != "" {
			nf.Files["/mnt/shared/acm/status"] = &modules.FileFact{Data: []byte(status)}
		}
		for _, u := range running[n] {
			nf.Units[u] = modules.UnitState{Active: "active", Enabled: "disabled"}
		}
		out[n] = &engine.Facts{Node: n, Shared: nf}
	}
	return out
}

// TestObserveActive: ACM's status wins over the config's bootstrap
// choice, which is used only before ACM ever wrote one.
func TestObserveActive(t *testing.T) {
	_, _, sys := loadTier(t) // active: "web2" in the config
	obs, err := sys.Observe(statusFacts("", nil))
	if err != nil || obs.Inputs["active"] != "web2" || obs.Inputs["bootstrap"] != true {
		t.Errorf("no status: %v %v, want web2 bootstrap", obs.Inputs, err)
	}
	obs, err = sys.Observe(statusFacts("active=web1\nupdated=1700000000\n", map[string][]string{"web1": {"mariadb"}}))
	if err != nil || obs.Inputs["active"] != "web1" || obs.Inputs["bootstrap"] != nil {
		t.Errorf("status names web1: %v %v", obs.Inputs, err)
	}
	if !strings.Contains(obs.Summary, "active web1 (named by ACM)") {
		t.Errorf("summary %q", obs.Summary)
	}
	if _, err := sys.Observe(statusFacts("active=web9\n", nil)); err == nil {
		t.Error("a status naming no node was accepted")
	}
}

// TestSecondMysqldRefused: mariadb running on the node ACM does not call
// active refuses the plan (the placement rule).
func TestSecondMysqldRefused(t *testing.T) {
	_, _, sys := loadTier(t)
	_, err := sys.Observe(statusFacts("active=web1\nupdated=1\n", map[string][]string{"web1": {"mariadb"}, "web2": {"mariadb"}}))
	if err == nil || !strings.Contains(err.Error(), "mariadb on web2") {
		t.Fatalf("err = %v, want the refusal naming mariadb on web2", err)
	}
}

// TestNameServer: type 2's name server is a node of its own, the engine
// connects to it, and it gets NSD with round-robin on its own address, the
// zone with the round-robin set at the config's TTL, and nothing of the
// app nodes (no ACM status is read there).
func TestNameServer(t *testing.T) {
	cfg, cl, sys := loadTier(t)
	if got := len(cl.Nodes); got != 3 || cl.Nodes[2].Name != "dns1" || cl.Nodes[2].SSH.Host != "10.0.0.13" {
		t.Fatalf("nodes to connect to: %+v, want web1, web2 and dns1", cl.Nodes)
	}
	r, err := engine.Render(cfg.Context, cl, sys, map[string]any{"active": "web1"})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	var ids []string
	for _, n := range r.Nodes {
		if n.Name != "dns1" {
			continue
		}
		for _, res := range n.Resources {
			ids = append(ids, res.ID)
			var s struct{ Path, Content string }
			json.Unmarshal(res.Spec, &s)
			files[s.Path] = s.Content
		}
		if len(sys.Needs(n).Files) != 0 {
			t.Errorf("dns1 reads ACM's status: %v", sys.Needs(n).Files)
		}
	}
	slices.Sort(ids)
	if want := []string{"file:/etc/nsd/hastack-shares.zone", "file:/etc/nsd/nsd.conf", "package:nsd", "service:nsd"}; !slices.Equal(ids, want) {
		t.Errorf("dns1's resources %v, want %v", ids, want)
	}
	for _, want := range []string{"\tip-address: 10.0.0.13\n", "\tround-robin: yes\n", "\tname: \"xfer.example.com\"\n", "\tzonefile: \"/etc/nsd/hastack-shares.zone\"\n"} {
		if !strings.Contains(files["/etc/nsd/nsd.conf"], want) {
			t.Errorf("nsd.conf lacks %q:\n%s", want, files["/etc/nsd/nsd.conf"])
		}
	}
	zone := files["/etc/nsd/hastack-shares.zone"]
	for _, want := range []string{"$ORIGIN xfer.example.com.\n", "$TTL 60\n", "@ IN NS dns1\n", "dns1 IN A 10.0.0.13\n", "@ IN A 198.51.100.11\n@ IN A 198.51.100.12\n"} {
		if !strings.Contains(zone, want) {
			t.Errorf("zone lacks %q:\n%s", want, zone)
		}
	}
	// NSD's own checkers, where NSD is installed (tools/deps.sh).
	if _, err := exec.LookPath("nsd-checkzone"); err != nil {
		t.Log("no nsd-checkzone: the rendered files are not checked by NSD")
		return
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "zone"), []byte(zone), 0o644)
	os.WriteFile(filepath.Join(dir, "nsd.conf"), []byte(files["/etc/nsd/nsd.conf"]), 0o644)
	for _, argv := range [][]string{{"nsd-checkzone", "xfer.example.com", filepath.Join(dir, "zone")}, {"nsd-checkconf", filepath.Join(dir, "nsd.conf")}} {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", argv[0], err, out)
		}
	}
}
