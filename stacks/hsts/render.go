package hsts

import (
	"cuelang.org/go/cue"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/stacks"
)

// embedded is the stack the driver renders with (stacks.Embedded).
var embedded = &stacks.Embedded{Pkg: "hsts", Def: "#Stack"}

// Inputs are what the stack is rendered for: the node that is primary now,
// the nodes whose Redis runs, whether the Sentinels name a primary (a live
// cluster) and whether the password is being rotated.
func Inputs(primary string, redisUp map[string]bool, live, rotating bool) map[string]any {
	in := map[string]any{"primary": primary}
	if live {
		in["live"] = true
	}
	if rotating {
		in["rotating"] = true
	}
	up := map[string]bool{}
	for n, ok := range redisUp {
		if ok { // a Redis marked false is a Redis down: one render, one cache key
			up[n] = true
		}
	}
	if len(up) > 0 {
		in["redisUp"] = up
	}
	return in
}

// withUnreached adds to in the cluster's nodes that have no facts (a
// partial plan, Options.AllowPartial): a new cluster's apply then waits for
// the Sentinels of the nodes it reached only. None: in stays as it is, so
// the common render keeps its cache key.
func withUnreached(in map[string]any, c *Cluster, facts map[string]*engine.Facts) map[string]any {
	var gone []string
	for _, n := range c.Nodes {
		if facts[n.Name] == nil {
			gone = append(gone, n.Name)
		}
	}
	if len(gone) > 0 {
		in["unreached"] = gone
	}
	return in
}

// Stack fills the embedded stack with the cluster and the inputs.
func (s *system) Stack(ctx *cue.Context, inputs map[string]any) (cue.Value, error) {
	st, err := embedded.Value(ctx)
	if err != nil {
		return cue.Value{}, err
	}
	// Each FillPath evaluates the whole stack again: gather the inputs in
	// one small struct and unify the stack with it once.
	return st.Unify(ctx.Encode(inputs).FillPath(cue.ParsePath("cluster"), s.c.Value)), nil
}

// cuePath is cue.ParsePath, for short.
func cuePath(p string) cue.Path { return cue.ParsePath(p) }
