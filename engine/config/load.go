package config

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"

	"hastack.dev/hastack/schema"
	"hastack.dev/hastack/stacks"
)

// Embedded is a tree of CUE packages shipped in the binary. Load mounts FS
// under <dir>/cue.mod/pkg/<Prefix>/, so users import them by a stable path
// with no registry and no vendored copy.
type Embedded struct {
	Prefix string // CUE import path of FS's root, e.g. hastack.dev/schema
	FS     fs.FS
}

// Embeds lists what every load overlays: the schemas users import and the
// stacks the engine renders clusters with.
var Embeds = []Embedded{
	{schema.ImportPrefix, schema.FS},
	{stacks.ImportPrefix, stacks.FS},
}

// rootPkg is the closed shape of a whole config folder (schema/root).
const rootPkg = schema.ImportPrefix + "/root"

// moduleFile is used when the user's folder has no cue.mod/module.cue.
// language v0.14.0 or later is what the schemas are written for.
const moduleFile = `module: "hastack.local/config@v0"
language: version: "v0.14.0"
`

// UsageError means dir cannot be loaded at all (missing, not a CUE package),
// as opposed to a config that loads and has problems.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Load reads the CUE package in dir and checks it. It returns Problems (nil
// when the config is valid) for anything wrong inside the config, and an
// error (a *UsageError) when dir is not a loadable CUE package. The Config
// is nil only when the package could not even be built.
func Load(dir string) (*Config, Problems, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, &UsageError{err.Error()}
	}
	if err := hasCUEFiles(abs, dir); err != nil {
		return nil, nil, err
	}
	cwd, _ := os.Getwd()
	pl := placer{dir: abs, cwd: cwd}
	fps, err := pl.fileProblems(abs)
	if err != nil {
		return nil, nil, &UsageError{err.Error()}
	}
	if len(fps) > 0 {
		fps.sort()
		return nil, fps, nil
	}

	overlay, err := overlayFor(abs)
	if err != nil {
		return nil, nil, err
	}
	insts := load.Instances([]string{".", rootPkg}, &load.Config{Dir: abs, Overlay: overlay})
	for _, inst := range insts {
		if inst.Err != nil {
			ps := pl.fromCUE(inst.Err, cue.Value{})
			ps.sort()
			return nil, ps.dedupe(), nil
		}
	}
	if ps := pl.tooManyNodes(insts[0].Files); len(ps) > 0 {
		return nil, ps, nil
	}
	// A fresh context per load: a long-lived one keeps growing.
	ctx := cuecontext.New()
	// Errors of user are not fatal here: Validate below lists them all,
	// where user.Err() would give only the first.
	user := ctx.BuildInstance(insts[0])
	rootSchema := ctx.BuildInstance(insts[1]).LookupPath(cue.ParsePath("#Root"))
	if err := rootSchema.Err(); err != nil {
		return nil, nil, fmt.Errorf("embedded root schema: %w", err) // a bug in hastack
	}
	root := user.Unify(rootSchema)
	cfg := &Config{Context: ctx, Root: root, pl: pl}

	var ps Problems
	if err := root.Validate(cue.Concrete(true)); err != nil {
		for _, p := range pl.fromCUE(err, root) {
			// Closedness errors come from the typo walk, which also sees the
			// ones CUE hides behind other errors of the same struct.
			// Errors inside #problems echo a user error reported already.
			if p.Msg != "field not allowed" && !strings.Contains(p.Path, "#problems") {
				ps = append(ps, p)
			}
		}
	}
	ps = append(ps, pl.unknownFields(root, rootSchema, cue.Path{})...)

	var secrets []string
	var unchecked Problems
	for _, field := range Fields {
		it, err := root.LookupPath(cue.ParsePath(field)).Fields()
		if err != nil {
			continue
		}
		for it.Next() {
			name := it.Selector().Unquoted()
			cv := it.Value()
			cfg.Clusters = append(cfg.Clusters, &Cluster{Name: name, Field: field, Value: cv})
			rps, skipped := pl.ruleProblems(cv)
			ps = append(ps, rps...)
			for _, r := range skipped {
				unchecked = append(unchecked, Problem{
					Path: cv.Path().String(),
					Msg:  "hastack bug: rule " + r + " of the schema could not be evaluated on this valid-looking config",
				})
			}
			sp, lits := pl.secretProblems(cv)
			ps = append(ps, sp...)
			secrets = append(secrets, lits...)
		}
	}
	// Locks and plans go by name: a name is one system's in both maps.
	sort.SliceStable(cfg.Clusters, func(i, j int) bool { return cfg.Clusters[i].Name < cfg.Clusters[j].Name })
	ps = append(ps, pl.nameProblems(cfg.Clusters)...)
	ps = append(ps, pl.uniqueProblems(cfg.Clusters)...)
	if len(ps) == 0 {
		ps = unchecked
	}
	ps = hideSecrets(ps, secrets)
	ps.sort()
	ps = onePerSecret(ps.dedupe())
	if len(ps) > 0 {
		return cfg, ps, nil
	}
	for _, cl := range cfg.Clusters {
		if err := decode(cl); err != nil {
			return cfg, Problems{{Path: cl.Path(), Msg: err.Error()}}, nil
		}
	}
	return cfg, nil, nil
}

// hasCUEFiles makes sure dir is a folder holding at least one .cue file.
func hasCUEFiles(abs, dir string) error {
	st, err := os.Stat(abs)
	if err != nil {
		return &UsageError{fmt.Sprintf("%s: no such folder", dir)}
	}
	if !st.IsDir() {
		return &UsageError{fmt.Sprintf("%s: not a folder (give the folder that holds the .cue files)", dir)}
	}
	files, _ := filepath.Glob(filepath.Join(abs, "*.cue"))
	if len(files) == 0 {
		return &UsageError{fmt.Sprintf("%s: no .cue files: not a CUE package", dir)}
	}
	return nil
}

// overlayFor mounts every Embedded under abs/cue.mod/pkg and adds a module
// file when the folder has none.
func overlayFor(abs string) (map[string]load.Source, error) {
	overlay := map[string]load.Source{}
	for _, e := range Embeds {
		err := fs.WalkDir(e.FS, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".cue") {
				return err
			}
			b, err := fs.ReadFile(e.FS, p)
			if err != nil {
				return err
			}
			target := filepath.Join(abs, "cue.mod", "pkg", filepath.FromSlash(path.Join(e.Prefix, p)))
			overlay[target] = load.FromBytes(b)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("embedded %s: %w", e.Prefix, err)
		}
	}
	mod := filepath.Join(abs, "cue.mod", "module.cue")
	if _, err := os.Stat(mod); err != nil {
		overlay[mod] = load.FromString(moduleFile)
	}
	return overlay, nil
}
