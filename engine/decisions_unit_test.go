package engine

// Decision logic as pure functions of facts, without root (issue 9 point
// 5): diff ordering and watch decisions, counts and plan text, staleness
// of a saved plan, fingerprints, and apply's rollout hooks.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// res is a resource as a stack renders it.
func res(id, kind string, phase int, spec string, watch ...string) modules.Resource {
	return modules.Resource{ID: id, Kind: kind, Phase: phase, Watch: watch, Spec: json.RawMessage(spec)}
}

// watchNode is one node of a stack with a "stop first" step listed before
// the file it watches, a config file, a file whose mode only may change,
// and two services: app restarted when conf changes, web reloaded when
// page changes.
func watchNode() NodeSpec {
	return NodeSpec{Name: "n1", SSH: config.SSH{Host: "h1", Port: 22}, Resources: []modules.Resource{
		res("service:app-stop", "service", 0, `{"unit": "app", "stopFirst": true}`, "file:conf"),
		res("file:conf", "file", 1, `{"path": "/etc/app.conf", "content": "new\n", "owner": "root", "group": "root", "mode": "0644"}`),
		res("file:page", "file", 1, `{"path": "/srv/page", "content": "page\n", "owner": "root", "group": "root", "mode": "0644"}`),
		res("service:app", "service", 2, `{"unit": "app", "enabled": true, "running": true}`, "file:conf"),
		res("service:web", "service", 2, `{"unit": "web", "enabled": true, "running": true, "reload": true}`, "file:page"),
	}}
}

// nodeFacts is n1 converged with watchNode, changed by edit.
func nodeFacts(edit func(*modules.NodeFacts)) *modules.NodeFacts {
	nf := &modules.NodeFacts{
		Users: map[string]int{"root": 0}, Groups: map[string]int{"root": 0},
		Files: map[string]*modules.FileFact{
			"/etc/app.conf": {Data: []byte("new\n"), Mode: 0o644, Owner: "root", Group: "root"},
			"/srv/page":     {Data: []byte("page\n"), Mode: 0o644, Owner: "root", Group: "root"},
		},
		Units: map[string]modules.UnitState{
			"app": {Active: "active", Enabled: "enabled"},
			"web": {Active: "active", Enabled: "enabled"},
		},
		Pending: map[string]bool{},
	}
	if edit != nil {
		edit(nf)
	}
	return nf
}

// diffOne plans watchNode against nf.
func diffOne(t *testing.T, nf *modules.NodeFacts, state string, key []byte) *Plan {
	t.Helper()
	r := &Rendered{Cluster: &config.Cluster{Name: "c"}, Phases: []Phase{{Name: "stop"}, {Name: "write"}, {Name: "start"}},
		Nodes: []NodeSpec{watchNode()}}
	obs := Observation{NodeState: map[string]string{"n1": state}}
	p, err := Diff(r, plain{r.Cluster}, obs, map[string]*Facts{"n1": {Node: "n1", Shared: nf}}, secret.Secret{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// changesOf is "id action (reason)" per change, in plan order.
func changesOf(p *Plan) []string {
	var out []string
	for _, c := range p.Nodes[0].Changes {
		s := c.ID + " " + string(c.Action)
		if c.Reason != "" {
			s += " (" + c.Reason + ")"
		}
		out = append(out, s)
	}
	return out
}

// Watchers see every change of the node, even one listed after them; a
// stop-first step stops the unit, which then starts rather than restarts;
// a change applied live (mode, owner) triggers nothing; a reload unit
// reloads; a restart owed by an earlier run is made; a stopped unit is
// started, and not stopped first.
func TestDiffWatchDecisions(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*modules.NodeFacts)
		want []string
	}{
		{"converged", nil, nil},
		{"conf content changed", func(nf *modules.NodeFacts) { nf.Files["/etc/app.conf"].Data = []byte("old\n") },
			[]string{"service:app-stop stop (file:conf changed)", "file:conf update", "service:app start (file:conf changed)"}},
		{"conf mode only: live, no restart", func(nf *modules.NodeFacts) { nf.Files["/etc/app.conf"].Mode = 0o600 },
			[]string{"file:conf update"}},
		{"page content changed: reload", func(nf *modules.NodeFacts) { nf.Files["/srv/page"].Data = []byte("old\n") },
			[]string{"file:page update", "service:web restart (file:page changed)"}},
		{"page created", func(nf *modules.NodeFacts) { delete(nf.Files, "/srv/page") },
			[]string{"file:page create", "service:web restart (file:page changed)"}},
		{"restart owed", func(nf *modules.NodeFacts) { nf.Pending["app"] = true },
			[]string{"service:app-stop stop (a restart owed by an earlier run)", "service:app start (a restart owed by an earlier run)"}},
		{"app stopped, conf changed: not stopped first", func(nf *modules.NodeFacts) {
			nf.Files["/etc/app.conf"].Data = []byte("old\n")
			nf.Units["app"] = modules.UnitState{Active: "inactive", Enabled: "enabled"}
		}, []string{"file:conf update", "service:app start (file:conf changed)"}},
		{"web disabled", func(nf *modules.NodeFacts) {
			nf.Units["web"] = modules.UnitState{Active: "active", Enabled: "disabled"}
		},
			[]string{"service:web enable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := changesOf(diffOne(t, nodeFacts(tc.edit), "", nil))
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	// The reload is a reload, not a restart.
	p := diffOne(t, nodeFacts(func(nf *modules.NodeFacts) { nf.Files["/srv/page"].Data = []byte("old\n") }), "", nil)
	if cmds := p.Nodes[0].Changes[1].Commands; !slices.Equal(cmds, []string{"systemctl reload web"}) {
		t.Errorf("web: %q", cmds)
	}
}

// A node with no facts, an unknown kind or a bad spec is an error naming
// the node and resource, not a plan.
func TestDiffErrors(t *testing.T) {
	r := &Rendered{Cluster: &config.Cluster{Name: "c"}, Phases: []Phase{{Name: "p"}}, Nodes: []NodeSpec{watchNode()}}
	if _, err := Diff(r, plain{r.Cluster}, Observation{}, map[string]*Facts{}, secret.Secret{}, nil); err == nil || err.Error() != "node n1: no facts" {
		t.Errorf("no facts: %v", err)
	}
	facts := map[string]*Facts{"n1": {Shared: nodeFacts(nil)}}
	r.Nodes[0].Resources = append(r.Nodes[0].Resources, res("file:bad", "file", 0, `{"path": "/x", "content": "", "owner": "nobody-here", "group": "root", "mode": "0644"}`))
	if _, err := Diff(r, plain{r.Cluster}, Observation{}, facts, secret.Secret{}, nil); err == nil || !strings.Contains(err.Error(), `node n1: file:bad: /x: owner "nobody-here" does not exist`) {
		t.Errorf("bad owner: %v", err)
	}
	r.Nodes[0].Resources = []modules.Resource{res("x:y", "no-such-kind", 0, `{}`)}
	if _, err := Diff(r, plain{r.Cluster}, Observation{}, facts, secret.Secret{}, nil); err == nil {
		t.Error("an unknown kind was diffed")
	}
}

// A node's fingerprint changes with its planned changes, its driver state
// and the key, and with nothing else.
func TestFingerprint(t *testing.T) {
	key := []byte("k1")
	base := diffOne(t, nodeFacts(nil), "master", key).Nodes[0].Fingerprint
	if base == "" || len(base) != 32 {
		t.Fatalf("fingerprint %q", base)
	}
	if again := diffOne(t, nodeFacts(nil), "master", key).Nodes[0].Fingerprint; again != base {
		t.Errorf("same plan, fingerprints %s and %s", base, again)
	}
	for name, fp := range map[string]string{
		"state": diffOne(t, nodeFacts(nil), "replica", key).Nodes[0].Fingerprint,
		"key":   diffOne(t, nodeFacts(nil), "master", []byte("k2")).Nodes[0].Fingerprint,
		"changes": diffOne(t, nodeFacts(func(nf *modules.NodeFacts) { nf.Files["/srv/page"].Mode = 0o600 }),
			"master", key).Nodes[0].Fingerprint,
	} {
		if fp == base {
			t.Errorf("another %s, same fingerprint", name)
		}
	}
	if fp := diffOne(t, nodeFacts(nil), "master", nil).Nodes[0].Fingerprint; fp != "" {
		t.Errorf("no key, fingerprint %q", fp)
	}
	s1, s2 := secret.New("pw"), secret.New("other")
	k := FingerprintKey(s1, []byte("salt"))
	if len(k) != 32 || string(k) != string(FingerprintKey(s1, []byte("salt"))) ||
		string(k) == string(FingerprintKey(s2, []byte("salt"))) || string(k) == string(FingerprintKey(s1, []byte("pepper"))) {
		t.Error("FingerprintKey is not a function of the password and the salt")
	}
}

// mixedPlan has one change of every action, and a node with none.
func mixedPlan() *Plan {
	ch := func(id string, phase int, c modules.Change) *ResourceChange {
		return &ResourceChange{ID: id, Kind: "k", Phase: phase, Change: &c}
	}
	return &Plan{Cluster: "web", Summary: " (design x): primary n1", Notes: []string{"a note"},
		Phases: []Phase{{Name: "files"}, {Name: "run"}},
		Nodes: []NodePlan{
			{Name: "n1", Address: "10.0.0.1:22", Changes: []*ResourceChange{
				ch("file:a", 0, modules.Change{Action: modules.Create, Summary: "create /a", Diff: "+x\n+y\n"}),
				ch("file:b", 0, modules.Change{Action: modules.Update, Summary: "update /b: mode", Commands: []string{"chmod 600 /b"}}),
				ch("file:c", 0, modules.Change{Action: modules.Delete, Summary: "delete /c"}),
				ch("cmd:a", 1, modules.Change{Action: modules.Run, Summary: "run make", Commands: []string{"make"}, Unpredictable: true}),
				ch("cmd:b", 1, modules.Change{Action: modules.Run, Summary: "init keystore", Commands: []string{"ks init"}}),
				ch("svc:a", 1, modules.Change{Action: modules.Restart, Summary: "systemctl restart a", Commands: []string{"systemctl restart a"}, Reason: "file:a changed"}),
			}},
			{Name: "n2", Address: "10.0.0.2:22"},
			{Name: "n3", Address: "10.0.0.3:22", Changes: []*ResourceChange{
				ch("svc:b", 1, modules.Change{Action: modules.Stop, Summary: "stop b", Commands: []string{"systemctl stop b"}}),
				ch("svc:c", 1, modules.Change{Action: modules.Enable, Summary: "systemctl enable c; systemctl start c", Commands: []string{"systemctl enable c", "systemctl start c"}}),
			}},
		}}
}

// The text plan: header, notes, only nodes that change, one line per
// change with its mark, reason, phase, the commands that are not its
// summary, the diff; then the counts.
func TestWriteText(t *testing.T) {
	var b strings.Builder
	WriteText(&b, []*Plan{mixedPlan(), {Cluster: "other", Phases: []Phase{{Name: "p"}}, Nodes: []NodePlan{{Name: "m1"}}}})
	want := `Cluster web (design x): primary n1
  note: a note

node n1 (10.0.0.1:22)
  + create /a   [phase 1: files]
      +x
      +y
  ~ update /b: mode   [phase 1: files]
      $ chmod 600 /b
  - delete /c   [phase 1: files]
  > run make [no guard: always runs, effect not known before apply]   [phase 2: run]
  > init keystore   [phase 2: run]
      $ ks init
  * systemctl restart a (file:a changed)   [phase 2: run]

node n3 (10.0.0.3:22)
  - stop b   [phase 2: run]
      $ systemctl stop b
  * systemctl enable c; systemctl start c   [phase 2: run]
      $ systemctl enable c
      $ systemctl start c
Cluster other

Plan: 4 nodes, 1 to create, 1 to change, 1 to delete, 2 commands to run (1 with unknown effect), 3 service actions.
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	WriteText(&b, []*Plan{{Cluster: "s", Nodes: []NodePlan{{Name: "n1"}}}})
	if b.String() != "Cluster s\n\nNo changes. The cluster matches the configuration.\n" {
		t.Errorf("converged: %q", b.String())
	}
}

func TestCountsAndSymbols(t *testing.T) {
	var c Counts
	if !c.Empty() {
		t.Error("zero counts not empty")
	}
	c.Add(mixedPlan())
	if c != (Counts{Nodes: 3, Create: 1, Update: 1, Delete: 1, Run: 2, Unpredictable: 1, Services: 3}) || c.Empty() {
		t.Errorf("counts %+v", c)
	}
	for _, only := range []Counts{{Create: 1}, {Update: 1}, {Delete: 1}, {Run: 1}, {Services: 1}} {
		if only.Empty() {
			t.Errorf("%+v is empty", only)
		}
	}
	if (Counts{Nodes: 5}).Empty() != true {
		t.Error("nodes alone are a change")
	}
	want := map[modules.Action]string{modules.Create: "+", modules.Update: "~", modules.Delete: "-", modules.Stop: "-",
		modules.Run: ">", modules.Start: "*", modules.Restart: "*", modules.Enable: "*"}
	for a, s := range want {
		if Symbol(a) != s {
			t.Errorf("Symbol(%s) = %q, want %q", a, Symbol(a), s)
		}
	}
	if s := Summary(Counts{Nodes: 2, Run: 1}); s != "Plan: 2 nodes, 0 to create, 0 to change, 0 to delete, 1 commands to run, 0 service actions." {
		t.Errorf("summary %q", s)
	}
}

// staleSystem judges Live itself: only its "primary" matters.
type staleSystem struct{ plain }

func (staleSystem) Stale(saved, fresh json.RawMessage) string {
	var a, b struct{ Primary string }
	json.Unmarshal(saved, &a)
	json.Unmarshal(fresh, &b)
	if a.Primary != b.Primary {
		return "the primary moved"
	}
	return ""
}

// A saved plan is stale when the clusters, their nodes, the live state
// (by the driver's judgement when it has one) or a node's fingerprint
// differ from a fresh plan's; a JSON round trip of an unchanged plan is
// not stale.
func TestPlanFileStale(t *testing.T) {
	mk := func(sys System, live string, fps ...string) *Plan {
		p := &Plan{Cluster: "c", Live: json.RawMessage(live), system: sys}
		for i, fp := range fps {
			p.Nodes = append(p.Nodes, NodePlan{Name: fmt.Sprintf("n%d", i+1), Fingerprint: fp})
		}
		return p
	}
	saved := func(ps ...*Plan) *PlanFile {
		b, err := json.Marshal(&PlanFile{FormatVersion: FormatVersion, Clusters: ps})
		if err != nil {
			t.Fatal(err)
		}
		var pf PlanFile
		if err := json.Unmarshal(b, &pf); err != nil {
			t.Fatal(err)
		}
		return &pf
	}
	p0 := plain{&config.Cluster{}}
	old := saved(mk(p0, `{"primary":"n1","epoch":1}`, "a", "b"))
	for _, tc := range []struct {
		name  string
		fresh []*Plan
		want  string
	}{
		{"same", []*Plan{mk(p0, `{"primary":"n1","epoch":1}`, "a", "b")}, ""},
		{"another cluster", []*Plan{mk(p0, `{}`, "a", "b"), mk(p0, `{}`)}, "the config's clusters changed"},
		{"a node less", []*Plan{mk(p0, `{"primary":"n1","epoch":1}`, "a")}, "cluster c changed"},
		{"live changed", []*Plan{mk(p0, `{"primary":"n2","epoch":1}`, "a", "b")},
			`cluster c: the live state changed: {"primary":"n1","epoch":1} -> {"primary":"n2","epoch":1}`},
		{"driver: what matters moved", []*Plan{mk(staleSystem{p0}, `{"primary":"n2","epoch":1}`, "a", "b")}, "cluster c: the primary moved"},
		{"driver: what does not matter changed", []*Plan{mk(staleSystem{p0}, `{"primary":"n1","epoch":2}`, "a", "b")}, ""},
		{"a node changed", []*Plan{mk(p0, `{"primary":"n1","epoch":1}`, "a", "B")},
			"node n2 changed since the plan was made (or the config or password did)"},
	} {
		if got := old.Stale(tc.fresh); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := (&PlanFile{FingerprintSalt: "zz"}).Salt(); err == nil {
		t.Error("a salt that is not hex was taken")
	}
	if _, err := (&PlanFile{}).Salt(); err == nil {
		t.Error("an empty salt was taken")
	}
	if b, err := (&PlanFile{FingerprintSalt: "0a0b"}).Salt(); err != nil || string(b) != "\x0a\x0b" {
		t.Errorf("salt %q %v", b, err)
	}
}

// NewPlanFile counts the session's plans and records its lock holder.
func TestNewPlanFile(t *testing.T) {
	s := &Session{Plans: []*Plan{mixedPlan()}, Salt: []byte{1, 2}}
	pf := NewPlanFile("/cfg", s)
	if pf.Summary != (Summ{Nodes: 3, Create: 1, Update: 1, Delete: 1, Run: 2, Unpredictable: 1, Services: 3, Changes: true}) ||
		pf.FingerprintSalt != "0102" || pf.ConfigDir != "/cfg" || pf.FormatVersion != FormatVersion || pf.Lock != nil {
		t.Errorf("plan file %+v", pf)
	}
	if pf := NewPlanFile("/cfg", &Session{Plans: []*Plan{{Cluster: "c"}}}); pf.Summary.Changes {
		t.Error("an empty plan has changes")
	}
}

// ReadPlanFile tells a config folder from a plan, and refuses another
// format version or a file that is not a plan.
func TestReadPlanFileKinds(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := ReadPlanFile(dir); ok || err != nil {
		t.Errorf("a folder: %v %v", ok, err)
	}
	write := func(name, text string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, ok, err := ReadPlanFile(write("junk", "not json")); ok || err == nil || !strings.Contains(err.Error(), "neither a config folder nor a saved plan") {
		t.Errorf("junk: %v %v", ok, err)
	}
	if _, ok, err := ReadPlanFile(write("v9", `{"format_version": "9"}`)); !ok || err == nil || !strings.Contains(err.Error(), "plan format 9, this hastack reads 1") {
		t.Errorf("v9: %v %v", ok, err)
	}
}

// hookLog is a Rollout that logs its calls and fails where told.
type hookLog struct {
	mu        sync.Mutex
	lines     []string
	failAfter string // node whose After fails
	failOn    string // node whose Before fails
}

func (h *hookLog) log(s string) { h.mu.Lock(); h.lines = append(h.lines, s); h.mu.Unlock() }
func (h *hookLog) Order(_ Phase, nodes []string) []string {
	out := slices.Clone(nodes)
	slices.Reverse(out)
	return out[:len(out)-1] // leaves one node out: it still has its turn
}
func (h *hookLog) Before(_ context.Context, node string, phase int, changes []*ResourceChange, _ func(Event)) error {
	h.log(fmt.Sprintf("before %s %d %d", node, phase, len(changes)))
	if node == h.failOn {
		return errors.New("not healthy")
	}
	return nil
}
func (h *hookLog) After(_ context.Context, node string, phase int, _ []*ResourceChange, _ func(Event)) error {
	h.log(fmt.Sprintf("after %s %d", node, phase))
	if node == h.failAfter {
		return errors.New("gate: not healthy after")
	}
	return nil
}

type hookSystem struct {
	plain
	h *hookLog
}

func (s hookSystem) Rollout(*Plan, map[string]host.Host, secret.Secret) Rollout { return s.h }

// A serial phase runs the driver's hooks around each node's changes in
// the driver's order (a node it leaves out last); a failed gate stops the
// rollout there: the next node is not touched, its changes are skipped.
func TestApplyRolloutHooks(t *testing.T) {
	for _, tc := range []struct {
		name              string
		failOn, failAfter string
		want              []string
		failed            string
	}{
		{"healthy", "", "", []string{"before n3 0 1", "after n3 0", "before n2 0 1", "after n2 0", "before n1 0 1", "after n1 0"}, ""},
		{"gate fails after n3", "", "n3", []string{"before n3 0 1", "after n3 0"}, "n3"},
		{"n2 refused before", "n2", "", []string{"before n3 0 1", "after n3 0", "before n2 0 1"}, "n2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPlan(t, 3, `{"name": "rollout", "serial": true, "order": "replicas-first"}`)
			h := &hookLog{failOn: tc.failOn, failAfter: tc.failAfter}
			p.system = hookSystem{h: h}
			e := newEvents()
			o := Apply(context.Background(), p, hostsFor(p, e), func(Event) {})
			if !slices.Equal(h.lines, tc.want) {
				t.Errorf("hooks %q\nwant  %q", h.lines, tc.want)
			}
			if tc.failed == "" {
				if o.Err() != nil {
					t.Fatalf("apply: %v", o.Failed)
				}
				return
			}
			if o.Failed[tc.failed] == nil || o.Err() == nil || o.Err().Error() != "apply failed" {
				t.Errorf("failed %v, err %v", o.Failed, o.Err())
			}
			if tc.failOn != "" && slices.Contains(e.lines, "start "+tc.failOn+" u0") {
				t.Errorf("%s was changed though its Before failed", tc.failOn)
			}
			if !slices.Equal(o.Skipped["n1"], []string{"service:u0"}) {
				t.Errorf("n1 skipped %q", o.Skipped["n1"])
			}
		})
	}
}

// A restart is recorded as owed on its node before anything runs; when
// that record cannot be written the node fails and nothing is changed.
func TestApplyMarksPendingFirst(t *testing.T) {
	p := &Plan{Phases: []Phase{{Name: "p"}}, system: plain{}}
	for i := 1; i <= 2; i++ {
		nf := nodeFacts(func(nf *modules.NodeFacts) { nf.Files["/srv/page"].Data = []byte("old\n") })
		d := diffOne(t, nf, "", nil)
		np := d.Nodes[0]
		np.Name = fmt.Sprintf("n%d", i)
		for _, c := range np.Changes {
			c.Phase = 0
		}
		p.Nodes = append(p.Nodes, np)
	}
	hosts := map[string]host.Host{"n1": &cmdHost{name: "n1"}, "n2": &cmdHost{name: "n2", failMark: true}}
	o := Apply(context.Background(), p, hosts, func(Event) {})
	n1 := hosts["n1"].(*cmdHost).cmds
	if len(n1) == 0 || n1[0] != "mkdir -p /var/lib/hastack/pending && touch /var/lib/hastack/pending/web" {
		t.Errorf("n1 ran %q: the owed restart is not recorded first", n1)
	}
	if n2 := hosts["n2"].(*cmdHost).cmds; len(n2) != 1 {
		t.Errorf("n2 ran %q after its record failed", n2)
	}
	if err := o.Failed["n2"]; err == nil || !strings.Contains(err.Error(), "recording pending restarts: exit 1") {
		t.Errorf("n2: %v", err)
	}
	// One failed node stops the phase for all: n1 had no turn either.
	if o.Done["n1"] != nil || !slices.Equal(o.Skipped["n1"], []string{"file:page", "service:web"}) {
		t.Errorf("n1 done %q, skipped %q", o.Done["n1"], o.Skipped["n1"])
	}
}

// A cancelled apply changes nothing and says it was interrupted.
func TestApplyCancelled(t *testing.T) {
	p := startPlan(t, 2, `{"name": "p"}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := newEvents()
	o := Apply(ctx, p, hostsFor(p, e), func(Event) {})
	if !o.Stopped || o.Err() == nil || o.Err().Error() != "apply interrupted" || len(e.lines) != 0 {
		t.Errorf("stopped %v, err %v, ran %q", o.Stopped, o.Err(), e.lines)
	}
	if len(o.Skipped["n1"]) != 1 || len(o.Skipped["n2"]) != 1 {
		t.Errorf("skipped %v", o.Skipped)
	}
}

func TestUnitOf(t *testing.T) {
	for id, want := range map[string]string{"service:redis": "redis", "service:a:b": "b", "plain": "plain", "x:": ""} {
		if got := unitOf(id); got != want {
			t.Errorf("unitOf(%q) = %q, want %q", id, got, want)
		}
	}
}

// cmdHost records the commands run on it; the pending marker fails when
// failMark is set.
type cmdHost struct {
	name     string
	failMark bool
	mu       sync.Mutex
	cmds     []string
}

func (h *cmdHost) Name() string                               { return h.name }
func (h *cmdHost) Close() error                               { return nil }
func (h *cmdHost) WriteFile(context.Context, host.File) error { h.log("write"); return nil }
func (h *cmdHost) log(s string)                               { h.mu.Lock(); h.cmds = append(h.cmds, s); h.mu.Unlock() }
func (h *cmdHost) Run(_ context.Context, cmd string, _ io.Reader) (host.Result, error) {
	h.log(cmd)
	if h.failMark && strings.HasPrefix(cmd, "mkdir -p /var/lib/hastack/pending") {
		return host.Result{Code: 1}, nil
	}
	return host.Result{}, nil
}
