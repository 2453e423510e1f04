package hsts

import (
	"fmt"
	"io/fs"
	"path"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/load"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/schema"
	"hastack.dev/hastack/stacks"
)

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
	st, err := stackFor(ctx)
	if err != nil {
		return cue.Value{}, err
	}
	// Each FillPath evaluates the whole stack again: gather the inputs in
	// one small struct and unify the stack with it once.
	return st.Unify(ctx.Encode(inputs).FillPath(cue.ParsePath("cluster"), s.c.Value)), nil
}

// cuePath is cue.ParsePath, for short.
func cuePath(p string) cue.Path { return cue.ParsePath(p) }
