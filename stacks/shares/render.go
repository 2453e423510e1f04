package shares

import (
	"fmt"
	"io/fs"
	"path"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/load"

	"hastack.dev/hastack/schema"
	"hastack.dev/hastack/stacks"
)

// virtualDir is where the embedded stack is "loaded" from: only the
// overlay exists there (as in stacks/hsts).
const virtualDir = "/hastack-embedded-shares"

// lastStack caches the stack built for the latest context.
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
		virtualDir + "/stack.cue":          load.FromString("package embedded\n\nimport \"hastack.dev/stacks/shares\"\n\nstack: shares.#Stack\n"),
	}
	for _, e := range []struct {
		fsys   fs.FS
		prefix string
	}{{schema.FS, schema.ImportPrefix}, {stacks.FS, stacks.ImportPrefix}} {
		err := fs.WalkDir(e.fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || path.Ext(p) != ".cue" {
				return err
			}
			b, err := fs.ReadFile(e.fsys, p)
			if err != nil {
				return err
			}
			ov[virtualDir+"/cue.mod/pkg/"+e.prefix+"/"+p] = load.FromBytes(b)
			return nil
		})
		if err != nil {
			return cue.Value{}, err
		}
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
