package schema_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"

	"hastack.dev/hastack/modules"
	_ "hastack.dev/hastack/modules/aspera" // registers asconf
	_ "hastack.dev/hastack/modules/redis"  // registers sentinelreset
	"hastack.dev/hastack/schema"
	"hastack.dev/hastack/stacks"
)

// build evaluates the CUE file src (package x) with the embedded schemas
// and stacks importable.
func build(t *testing.T, src string) cue.Value {
	t.Helper()
	const dir = "/schema-test"
	ov := map[string]load.Source{
		dir + "/cue.mod/module.cue": load.FromString("module: \"hastack.dev/test\"\nlanguage: version: \"v0.14.0\"\n"),
		dir + "/x.cue":              load.FromString(src),
	}
	for prefix, fsys := range map[string]fs.FS{schema.ImportPrefix: schema.FS, stacks.ImportPrefix: stacks.FS} {
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".cue") {
				return err
			}
			b, err := fs.ReadFile(fsys, p)
			ov[dir+"/cue.mod/pkg/"+prefix+"/"+p] = load.FromBytes(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	insts := load.Instances([]string{"."}, &load.Config{Dir: dir, Overlay: ov})
	if insts[0].Err != nil {
		t.Fatal(insts[0].Err)
	}
	v := cuecontext.New().BuildInstance(insts[0])
	if v.Err() != nil {
		t.Fatal(v.Err())
	}
	return v
}

// stackSchema is hastack.dev/schema/stack.
func stackSchema(t *testing.T) cue.Value {
	return build(t, "package x\n\nimport \"hastack.dev/schema/stack\"\n\ns: stack\n").LookupPath(cue.ParsePath("s"))
}

// goField is one json field of a Go spec struct.
type goField struct {
	kind cue.Kind // what CUE must declare: string, int, bool or list
	elem string   // the struct type of a list's elements (or of the field), if any
}

// goSpecs reads the modules' source (modules/ and the product modules
// below it): every struct type named <kind>Spec, and the structs they
// use, field by field as encoding/json names them. The spec types are
// unexported, so this reads them rather than reflecting.
func goSpecs(t *testing.T) (specs map[string]string, structs map[string]map[string]goField) {
	t.Helper()
	specs = map[string]string{}               // lower-case kind -> struct name
	structs = map[string]map[string]goField{} // struct name -> json name -> field
	types := map[string]*ast.StructType{}
	err := filepath.WalkDir("../modules", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, 0)
		if err != nil {
			return err
		}
		pkg := filepath.Dir(p)
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			if st, ok := ts.Type.(*ast.StructType); ok {
				types[pkg+"."+ts.Name.Name] = st
				if k, ok := strings.CutSuffix(ts.Name.Name, "Spec"); ok && k != "" {
					specs[strings.ToLower(k)] = pkg + "." + ts.Name.Name
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var fields func(name string)
	fields = func(name string) {
		if _, done := structs[name]; done {
			return
		}
		pkg := name[:strings.LastIndex(name, ".")]
		out := map[string]goField{}
		structs[name] = out
		for _, fl := range types[name].Fields.List {
			if len(fl.Names) == 0 {
				t.Errorf("%s: embedded field: this test does not follow it", name)
				continue
			}
			jsonName := fl.Names[0].Name
			if fl.Tag != nil {
				tag, _ := strconv.Unquote(fl.Tag.Value)
				if n, _, _ := strings.Cut(reflect.StructTag(tag).Get("json"), ","); n != "" {
					jsonName = n
				}
			}
			if jsonName == "-" || !ast.IsExported(fl.Names[0].Name) {
				continue
			}
			gf := goField{}
			typ := fl.Type
			if s, ok := typ.(*ast.StarExpr); ok {
				typ = s.X
			}
			if a, ok := typ.(*ast.ArrayType); ok {
				gf.kind = cue.ListKind
				typ = a.Elt
			}
			if id, ok := typ.(*ast.Ident); ok {
				switch id.Name {
				case "string":
					gf.kind |= cue.StringKind
				case "bool":
					gf.kind |= cue.BoolKind
				case "int":
					gf.kind |= cue.IntKind
				default:
					if types[pkg+"."+id.Name] == nil {
						t.Errorf("%s.%s: type %s: this test does not know it", name, jsonName, id.Name)
					}
					gf.elem = pkg + "." + id.Name
					fields(gf.elem)
				}
			}
			if gf.kind&cue.ListKind != 0 {
				gf.kind = cue.ListKind // the element's kind is checked below
			}
			out[jsonName] = gf
		}
	}
	for _, s := range specs {
		fields(s)
	}
	return specs, structs
}

// cueFields lists the fields a definition declares (regular, optional,
// required) with their kinds.
func cueFields(v cue.Value) map[string]cue.Value {
	out := map[string]cue.Value{}
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		return out
	}
	for it.Next() {
		out[it.Selector().Unquoted()] = it.Value()
	}
	return out
}

// compare says how definition def differs from the json fields of Go
// struct name (names and kinds), and so on down nested structs.
func compare(where string, def cue.Value, name string, structs map[string]map[string]goField) (diffs []string) {
	want := structs[name]
	got := cueFields(def)
	var missing, extra []string
	for f := range want {
		if _, ok := got[f]; !ok {
			missing = append(missing, f)
		}
	}
	for f := range got {
		if _, ok := want[f]; !ok {
			extra = append(extra, f)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		diffs = append(diffs, fmt.Sprintf("%s: the CUE definition lacks fields that %s decodes: %s", where, name, strings.Join(missing, ", ")))
	}
	if len(extra) > 0 {
		diffs = append(diffs, fmt.Sprintf("%s: the CUE definition declares fields that %s does not decode: %s", where, name, strings.Join(extra, ", ")))
	}
	for f, gf := range want {
		cv, ok := got[f]
		if !ok {
			continue
		}
		if k := cv.IncompleteKind(); gf.kind != 0 && k != gf.kind {
			diffs = append(diffs, fmt.Sprintf("%s.%s: CUE kind %v, Go decodes %v", where, f, k, gf.kind))
		}
		if gf.elem == "" {
			continue
		}
		sub := cv
		if gf.kind == cue.ListKind {
			sub = cv.LookupPath(cue.MakePath(cue.AnyIndex))
		}
		diffs = append(diffs, compare(where+"."+f, sub, gf.elem, structs)...)
	}
	return diffs
}

// The kinds' CUE definitions (#Specs) and the Go spec structs the modules
// decode must name the same fields, or a field the module reads would be a
// vet error ("unknown field") and a field CUE accepts would be ignored.
func TestSpecsMatchModules(t *testing.T) {
	specs := stackSchema(t).LookupPath(cue.ParsePath("#Specs"))
	if specs.Err() != nil {
		t.Fatal(specs.Err())
	}
	defs := cueFields(specs)
	goSpec, structs := goSpecs(t)

	kinds := modules.Kinds()
	if len(kinds) == 0 {
		t.Fatal("modules.Kinds() is empty")
	}
	for _, k := range kinds {
		if _, ok := defs[k]; !ok {
			t.Errorf("kind %q is registered in modules but #Specs has no definition for it (schema/stack/kinds.cue)", k)
		}
	}
	for k, def := range defs {
		name, ok := goSpec[strings.ToLower(k)]
		if !ok {
			t.Errorf("#Specs.%s: no Go struct %sSpec under modules/ (a kind's module decodes its spec into <kind>Spec)", k, k)
			continue
		}
		for _, d := range compare("#Specs."+k, def, name, structs) {
			t.Error(d)
		}
	}
}

// The comparison must be able to fail: a field missing on either side, or
// of another kind, is found.
func TestCompareFindsDrift(t *testing.T) {
	_, structs := goSpecs(t)
	ctx := cuecontext.New()
	for src, want := range map[string]string{
		`{path!: string, content!: string, owner!: string, group!: string}`:                         `lacks fields that ../modules.fileSpec decodes: mode`,
		`{path!: string, content!: string, owner!: string, group!: string, mode!: string, x?: int}`: `declares fields that ../modules.fileSpec does not decode: x`,
		`{path!: string, content!: string, owner!: string, group!: string, mode!: int}`:             `#File.mode: CUE kind int, Go decodes string`,
	} {
		got := strings.Join(compare("#File", ctx.CompileString(src), "../modules.fileSpec", structs), "\n")
		if !strings.Contains(got, want) {
			t.Errorf("%s: got %q, want %q", src, got, want)
		}
	}
}

// The HSTS stack's output is a stack like any user's: its phases and nodes
// fit stack.#Phase and stack.#Node, and every field it writes is one the
// interface declares. Checked here, not at every render: unifying the
// rendered stack with the interface doubled the render's time (55-67 ms ->
// 137-145 ms at 31 nodes, BenchmarkRender31).
func TestHSTSStackConforms(t *testing.T) {
	for _, tc := range []struct{ name, cluster, inputs string }{
		{"sentinel, new", `design: "sentinel"`, ``},
		{"sentinel, live, rotating", `design: "sentinel", redis: debugCommand: "yes", previousSecret: env: "OLD"`, `live: true, rotating: true, primary: "n2", redisUp: {n1: true, n2: true}`},
		{"haproxy, new", `design: "haproxy"`, ``},
		{"haproxy, live, no firewall", `design: "haproxy", firewall: manage: false`, `live: true`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := build(t, `package x

import (
	"hastack.dev/schema/hsts"
	"hastack.dev/schema/stack"
	st "hastack.dev/stacks/hsts"
)

out: st.#Stack & {
	cluster: hsts.#Cluster & {
		nodes: [{name: "n1", ip: "10.0.0.1"}, {name: "n2", ip: "10.0.0.2"}, {name: "n3", ip: "10.0.0.3"}]
		primary: "n1"
		`+tc.cluster+`
	}
	`+tc.inputs+`
}
checked: stack.#Stack & {phases: out.phases, nodes: out.nodes}
`)
			checked := v.LookupPath(cue.ParsePath("checked"))
			if err := checked.Validate(cue.Concrete(true)); err != nil {
				t.Fatalf("the HSTS stack's output does not fit stack.#Stack: %v", err)
			}
			iface := stackSchema(t)
			var bad []string
			undeclared(checked.LookupPath(cue.ParsePath("nodes")), iface.LookupPath(cue.ParsePath("#Stack.nodes")), "nodes", &bad)
			undeclared(checked.LookupPath(cue.ParsePath("phases")), iface.LookupPath(cue.ParsePath("#Stack.phases")), "phases", &bad)
			for _, b := range bad {
				t.Errorf("the HSTS stack writes %s, which stack.#Stack does not declare", b)
			}
			n, _ := checked.LookupPath(cue.ParsePath("nodes[0].resources")).Len().Int64()
			if n < 10 {
				t.Errorf("only %d resources rendered on n1: the stack did not render", n)
			}
		})
	}
}

// undeclared appends the paths of v's fields that schema does not declare,
// following structs and lists, and a resource's spec by its kind.
func undeclared(v, schema cue.Value, at string, bad *[]string) {
	switch v.Kind() {
	case cue.ListKind:
		elem := schema.LookupPath(cue.MakePath(cue.AnyIndex))
		it, _ := v.List()
		for i := 0; it.Next(); i++ {
			undeclared(it.Value(), elem, fmt.Sprintf("%s[%d]", at, i), bad)
		}
	case cue.StructKind:
		if k, err := v.LookupPath(cue.ParsePath("kind")).String(); err == nil && v.LookupPath(cue.ParsePath("spec")).Exists() {
			schema = schema.FillPath(cue.ParsePath("kind"), k)
		}
		known := cueFields(schema)
		it, _ := v.Fields()
		for it.Next() {
			name := it.Selector().Unquoted()
			fs, ok := known[name]
			if !ok {
				*bad = append(*bad, at+"."+name)
				continue
			}
			undeclared(it.Value(), fs, at+"."+name, bad)
		}
	}
}
