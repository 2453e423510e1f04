package stacks

import (
	"fmt"
	"io/fs"
	"path"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/load"

	"hastack.dev/hastack/schema"
)

// Embedded is one of FS's stacks built on its own, outside a user's
// folder, for a driver to render with: the definition Def (say "#Stack")
// of package Pkg ("hsts"), built once per cue.Context. Only the latest
// context's is kept: a run renders several times in one context, and
// keeping older ones would only grow.
type Embedded struct {
	Pkg, Def string

	mu  sync.Mutex
	ctx *cue.Context
	v   cue.Value
}

// Value builds the stack in ctx, or returns the one built in it.
func (e *Embedded) Value(ctx *cue.Context) (cue.Value, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ctx == ctx {
		return e.v, nil
	}
	// The package is "loaded" from dir, where only the overlay exists.
	dir := "/hastack-embedded-" + e.Pkg
	ov := map[string]load.Source{
		dir + "/cue.mod/module.cue": load.FromString("module: \"hastack.dev/embedded\"\nlanguage: version: \"v0.14.0\"\n"),
		dir + "/stack.cue":          load.FromString(fmt.Sprintf("package embedded\n\nimport %q\n\nstack: %s.%s\n", ImportPrefix+"/"+e.Pkg, e.Pkg, e.Def)),
	}
	for _, src := range []struct {
		fsys   fs.FS
		prefix string
	}{{schema.FS, schema.ImportPrefix}, {FS, ImportPrefix}} {
		err := fs.WalkDir(src.fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || path.Ext(p) != ".cue" {
				return err
			}
			b, err := fs.ReadFile(src.fsys, p)
			if err != nil {
				return err
			}
			ov[dir+"/cue.mod/pkg/"+src.prefix+"/"+p] = load.FromBytes(b)
			return nil
		})
		if err != nil {
			return cue.Value{}, err
		}
	}
	insts := load.Instances([]string{"."}, &load.Config{Dir: dir, Overlay: ov})
	if insts[0].Err != nil {
		return cue.Value{}, fmt.Errorf("embedded stack %s: %v", e.Pkg, insts[0].Err)
	}
	v := ctx.BuildInstance(insts[0])
	if v.Err() != nil {
		return cue.Value{}, fmt.Errorf("embedded stack %s: %v", e.Pkg, v.Err())
	}
	v = v.LookupPath(cue.ParsePath("stack"))
	e.ctx, e.v = ctx, v
	return v, nil
}
