// Package engine turns a loaded config into a plan and carries it out:
// render per-node resources from each system's stack (a driver observes
// what CUE cannot), gather facts over one
// connection per node, diff into a plan, apply it phase by phase.
package engine

import (
	"encoding/json"
	"fmt"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/modules"
)

// kindOf names a system in messages as its config does: "cluster" for an
// entry of clusters, "stack" for one of stacks.
func kindOf(cl *config.Cluster) string {
	if cl.Field == "stacks" {
		return "stack"
	}
	return "cluster"
}

// Rendered is one system's desired state.
type Rendered struct {
	Cluster *config.Cluster `json:"-"`
	Inputs  map[string]any  `json:"-"` // what the stack was rendered for
	Phases  []Phase         `json:"phases"`
	Nodes   []NodeSpec      `json:"nodes"` // in apply order
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
	// Order of the nodes: "" (the plan's order) or one the system's
	// driver knows (PhaseOrders).
	Order string `json:"order,omitempty"`
	// Gate asks the driver to wait, after each node that changed, until
	// the system is healthy again; a failed gate stops the rollout.
	Gate bool `json:"gate,omitempty"`
	// Failover names a unit whose restart the driver prepares for (it
	// moves a role away from the node first).
	Failover string `json:"failover,omitempty"`
	// PauseMs is waited after a node on which one of PauseAfter changed
	// (a peer that others need time to agree on).
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

// Render evaluates sys's stack for inputs and decodes the per-node
// resources.
func Render(ctx *cue.Context, cl *config.Cluster, sys System, inputs map[string]any) (*Rendered, error) {
	out, err := renderJSON(ctx, cl, sys, inputs)
	if err != nil {
		return nil, err
	}
	return decodeRendered(cl, sys, inputs, out)
}

// rendered is the stack's output as JSON: what the render cache keeps.
type rendered struct {
	Phases json.RawMessage `json:"phases"`
	Nodes  json.RawMessage `json:"nodes"`
}

// renderJSON evaluates the stack for its inputs.
func renderJSON(ctx *cue.Context, cl *config.Cluster, sys System, inputs map[string]any) (*rendered, error) {
	v, err := sys.Stack(ctx, inputs)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v", kindOf(cl), cl.Name, err)
	}
	if err := v.Validate(cue.Concrete(true)); err != nil {
		return nil, fmt.Errorf("%s %s: rendering the stack: %v", kindOf(cl), cl.Name, err)
	}
	var out rendered
	if out.Phases, err = v.LookupPath(cue.ParsePath("phases")).MarshalJSON(); err != nil {
		return nil, fmt.Errorf("%s %s: phases: %v", kindOf(cl), cl.Name, err)
	}
	if out.Nodes, err = v.LookupPath(cue.ParsePath("nodes")).MarshalJSON(); err != nil {
		return nil, fmt.Errorf("%s %s: nodes: %v", kindOf(cl), cl.Name, err)
	}
	return &out, nil
}

// decodeRendered turns the stack's JSON into phases and per-node resources
// (each module decodes its own spec later) and checks them.
func decodeRendered(cl *config.Cluster, sys System, inputs map[string]any, out *rendered) (*Rendered, error) {
	r := &Rendered{Cluster: cl, Inputs: inputs}
	if err := json.Unmarshal(out.Phases, &r.Phases); err != nil {
		return nil, fmt.Errorf("%s %s: phases: %v", kindOf(cl), cl.Name, err)
	}
	var orders []string
	if po, ok := sys.(PhaseOrders); ok {
		orders = po.Orders()
	}
	if err := checkPhases(r.Phases, orders); err != nil {
		return nil, fmt.Errorf("%s %s: %v", kindOf(cl), cl.Name, err)
	}
	if err := json.Unmarshal(out.Nodes, &r.Nodes); err != nil {
		return nil, fmt.Errorf("%s %s: nodes: %v", kindOf(cl), cl.Name, err)
	}
	for _, n := range r.Nodes {
		seen := map[string]bool{}
		for _, res := range n.Resources {
			if seen[res.ID] {
				return nil, fmt.Errorf("%s %s: node %s: resource %s rendered twice", kindOf(cl), cl.Name, n.Name, res.ID)
			}
			seen[res.ID] = true
			if _, err := modules.Lookup(res.Kind); err != nil {
				return nil, fmt.Errorf("%s %s: node %s: %s: %v", kindOf(cl), cl.Name, n.Name, res.ID, err)
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
