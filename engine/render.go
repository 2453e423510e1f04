// Package engine turns a loaded config into a plan and carries it out:
// render per-node resources from the stack, gather facts over one
// connection per node, diff into a plan, apply it phase by phase.
package engine

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/load"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/modules"
	"hastack.dev/hastack/schema"
	"hastack.dev/hastack/stacks"
)

// Rendered is one cluster's desired state.
type Rendered struct {
	Cluster *config.Cluster `json:"-"`
	Primary string          `json:"primary"` // the primary the stack was rendered for
	Phases  []Phase         `json:"phases"`
	Nodes   []NodeSpec      `json:"nodes"` // in apply order: primary first
}

// Phase is one step of the procedure.
type Phase struct {
	Name string `json:"name"`
	// Serial runs the phase one node at a time: batches of 1.
	Serial bool `json:"serial,omitempty"`
	// Batches runs the phase's nodes, in its Order, in groups one after the
	// other, the nodes of a group in parallel (Ansible's serial list):
	// [1, "100%"] is the first node alone, then all the others together.
	// Neither Serial nor Batches: every node at once.
	Batches []Batch `json:"batches,omitempty"`
	// Order of the nodes: "primary-first" (the plan's order, the default)
	// or "replicas-first".
	Order string `json:"order,omitempty"`
	// Gate waits, after each node that changed, until the cluster is
	// healthy again; a failed gate stops the rollout.
	Gate bool `json:"gate,omitempty"`
	// Failover names the unit whose restart on the primary is preceded by
	// SENTINEL FAILOVER, so the primary moves before it goes down.
	Failover string `json:"failover,omitempty"`
	// PauseMs is waited after a node on which one of PauseAfter changed
	// (a Sentinel started or reset: the others need time to agree).
	PauseMs    int      `json:"pauseMilliseconds,omitempty"`
	PauseAfter []string `json:"pauseAfter,omitempty"`
}

// NodeSpec is what one node should hold.
type NodeSpec struct {
	Name      string             `json:"name"`
	IP        string             `json:"ip"`
	SSH       config.SSH         `json:"ssh"`
	Resources []modules.Resource `json:"resources"`
}

// virtualDir is where the embedded stack is "loaded" from: only the overlay
// exists there.
const virtualDir = "/hastack-embedded"

// lastStack caches the stack built for the latest context: a run renders
// several times in one context; keeping older contexts would only grow.
var lastStack struct {
	sync.Mutex
	ctx *cue.Context
	v   cue.Value
}

// stackFor builds the embedded stack package in ctx (once per context).
func stackFor(ctx *cue.Context) (cue.Value, error) {
	lastStack.Lock()
	defer lastStack.Unlock()
	if lastStack.ctx == ctx {
		return lastStack.v, nil
	}
	ov := map[string]load.Source{
		virtualDir + "/cue.mod/module.cue": load.FromString("module: \"hastack.dev/embedded\"\nlanguage: version: \"v0.14.0\"\n"),
		virtualDir + "/stack.cue":          load.FromString("package embedded\n\nimport \"hastack.dev/stacks/hsts\"\n\nstack: hsts.#Stack\n"),
	}
	add := func(fsys fs.FS, prefix string) error {
		return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || path.Ext(p) != ".cue" {
				return err
			}
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			ov[virtualDir+"/cue.mod/pkg/"+prefix+"/"+p] = load.FromBytes(b)
			return nil
		})
	}
	if err := add(schema.FS, schema.ImportPrefix); err != nil {
		return cue.Value{}, err
	}
	if err := add(stacks.FS, stacks.ImportPrefix); err != nil {
		return cue.Value{}, err
	}
	insts := load.Instances([]string{"."}, &load.Config{Dir: virtualDir, Overlay: ov})
	if insts[0].Err != nil {
		return cue.Value{}, fmt.Errorf("embedded stack: %v", insts[0].Err)
	}
	v := ctx.BuildInstance(insts[0])
	if v.Err() != nil {
		return cue.Value{}, fmt.Errorf("embedded stack: %v", v.Err())
	}
	v = v.LookupPath(cue.ParsePath("stack"))
	lastStack.ctx, lastStack.v = ctx, v
	return v, nil
}

// Render fills the stack with a validated cluster, the node that is primary
// now and the nodes whose Redis runs, and decodes the per-node resources.
func Render(ctx *cue.Context, cl *config.Cluster, primary string, redisUp map[string]bool, live bool) (*Rendered, error) {
	out, err := renderJSON(ctx, cl, primary, redisUp, live)
	if err != nil {
		return nil, err
	}
	return decodeRendered(cl, primary, out)
}

// rendered is the stack's output as JSON: what the render cache keeps.
type rendered struct {
	Phases json.RawMessage `json:"phases"`
	Nodes  json.RawMessage `json:"nodes"`
}

// renderJSON evaluates the stack for its inputs.
func renderJSON(ctx *cue.Context, cl *config.Cluster, primary string, redisUp map[string]bool, live bool) (*rendered, error) {
	st, err := stackFor(ctx)
	if err != nil {
		return nil, err
	}
	// Each FillPath evaluates the whole stack again: gather the inputs in
	// one small struct and unify the stack with it once.
	in := map[string]any{"primary": primary}
	if live {
		in["live"] = true
	}
	if cl.PreviousSecret != nil {
		in["rotating"] = true
	}
	if len(redisUp) > 0 {
		in["redisUp"] = redisUp
	}
	v := st.Unify(ctx.Encode(in).FillPath(cue.ParsePath("cluster"), cl.Value))
	if err := v.Validate(cue.Concrete(true)); err != nil {
		return nil, fmt.Errorf("cluster %s: rendering the stack: %v", cl.Name, err)
	}
	var out rendered
	if out.Phases, err = v.LookupPath(cue.ParsePath("phases")).MarshalJSON(); err != nil {
		return nil, fmt.Errorf("cluster %s: phases: %v", cl.Name, err)
	}
	if out.Nodes, err = v.LookupPath(cue.ParsePath("nodes")).MarshalJSON(); err != nil {
		return nil, fmt.Errorf("cluster %s: nodes: %v", cl.Name, err)
	}
	return &out, nil
}

// decodeRendered turns the stack's JSON into phases and per-node resources
// (each module decodes its own spec later) and checks them.
func decodeRendered(cl *config.Cluster, primary string, out *rendered) (*Rendered, error) {
	r := &Rendered{Cluster: cl, Primary: primary}
	if err := json.Unmarshal(out.Phases, &r.Phases); err != nil {
		return nil, fmt.Errorf("cluster %s: phases: %v", cl.Name, err)
	}
	if err := checkPhases(r.Phases); err != nil {
		return nil, fmt.Errorf("cluster %s: %v", cl.Name, err)
	}
	if err := json.Unmarshal(out.Nodes, &r.Nodes); err != nil {
		return nil, fmt.Errorf("cluster %s: nodes: %v", cl.Name, err)
	}
	for _, n := range r.Nodes {
		seen := map[string]bool{}
		for _, res := range n.Resources {
			if seen[res.ID] {
				return nil, fmt.Errorf("cluster %s: node %s: resource %s rendered twice", cl.Name, n.Name, res.ID)
			}
			seen[res.ID] = true
			if _, err := modules.Lookup(res.Kind); err != nil {
				return nil, fmt.Errorf("cluster %s: node %s: %s: %v", cl.Name, n.Name, res.ID, err)
			}
		}
	}
	return r, nil
}

// node is the named node's spec.
func (r *Rendered) node(name string) NodeSpec {
	for _, n := range r.Nodes {
		if n.Name == name {
			return n
		}
	}
	return NodeSpec{Name: name}
}

// only keeps the nodes that have facts (a partial run).
func (r *Rendered) only(facts map[string]*Facts) *Rendered {
	out := *r
	out.Nodes = nil
	for _, n := range r.Nodes {
		if facts[n.Name] != nil {
			out.Nodes = append(out.Nodes, n)
		}
	}
	return &out
}
