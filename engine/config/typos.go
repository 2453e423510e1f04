package config

import (
	"fmt"
	"sort"
	"strings"

	"cuelang.org/go/cue"
)

// unknownFields reports every regular field of v that schema does not declare.
//
// The schemas are open (`...`) so that a typo never turns its struct into an
// error that silences the rules reading it; and CUE's own "field not allowed"
// errors vanish while the same struct holds another error anyway. This walk
// asks the clean schema instead, whatever else is wrong with v. It follows
// the schema's shape (struct or list): an erroneous v still lists its fields.
func (pl placer) unknownFields(v, schema cue.Value, at cue.Path) Problems {
	w := typoWalk{pl: pl, chosen: map[string]cue.Value{}, infos: map[cue.Value]*schemaInfo{}}
	return w.walk(v, schema, at)
}

// typoWalk is one unknownFields walk.
type typoWalk struct {
	pl placer
	// chosen holds the schemas picked by a selector field (choose), by
	// the schema's path and the selectors' values: a thousand resources
	// of three kinds fill the schema three times.
	chosen map[string]cue.Value
	// infos holds what the walk asks of each schema value: a thousand
	// nodes share one element schema, asked once (it was half of a
	// 1,001-node vet).
	infos map[cue.Value]*schemaInfo
}

// schemaInfo is what the walk reads of one schema value.
type schemaInfo struct {
	incomplete bool // its shape depends on v's values (spec: #Specs[kind])
	kind       cue.Kind
	known      []string       // its declared fields, sorted (structs)
	pattern    bool           // a pattern constraint covers every name (structs)
	inputs     bool           // undeclared fields are the stack's inputs (structs)
	selects    []cue.Selector // nil: the schema lists no fields (an error alone)
	elem       cue.Value      // the element schema (lists)
	fields     map[string]fieldInfo
}

type fieldInfo struct {
	schema cue.Value
	bad    bool // the field's schema is an error alone: it needs choose
}

func (w *typoWalk) info(schema cue.Value) *schemaInfo {
	if in, ok := w.infos[schema]; ok {
		return in
	}
	in := &schemaInfo{
		incomplete: schema.IncompleteKind() == cue.BottomKind || schema.Err() != nil,
		kind:       schema.IncompleteKind(),
		fields:     map[string]fieldInfo{},
	}
	switch in.kind {
	case cue.StructKind:
		in.known, in.selects = fieldNames(schema)
		in.pattern, in.inputs = hasPattern(schema), hasInputs(schema)
	case cue.ListKind:
		in.elem = schema.LookupPath(cue.MakePath(cue.AnyIndex))
	}
	w.infos[schema] = in
	return in
}

// field returns the schema of field sel of schema (described by in).
func (in *schemaInfo) field(schema cue.Value, sel cue.Selector) fieldInfo {
	k := sel.String()
	f, ok := in.fields[k]
	if !ok {
		f.schema = schemaField(schema, sel)
		f.bad = f.schema.Err() != nil
		in.fields[k] = f
	}
	return f
}

func (w *typoWalk) walk(v, schema cue.Value, at cue.Path) Problems {
	var out Problems
	in := w.info(schema)
	if in.incomplete {
		// A schema whose shape depends on v's own values (a resource's
		// kind picks its spec: spec: #Specs[kind]) is incomplete alone:
		// ask it again with them.
		schema = w.choose(schema, in, v)
		in = w.info(schema)
	}
	switch in.kind {
	case cue.StructKind:
		it, err := v.Fields()
		if err != nil {
			return nil
		}
		for it.Next() {
			sel := it.Selector()
			path := cue.MakePath(append(at.Selectors(), sel)...)
			if !declared(in.known, in.pattern, sel) {
				if in.inputs && !w.pl.misspelt(sel, in.known, v) {
					continue // the stack's own input: it has no schema here
				}
				p := Problem{Path: path.String(), Msg: unknownMsg(sel, in.known)}
				if pos, ok := w.pl.firstUser(valuePositions(it.Value())); ok {
					w.pl.set(&p, pos)
				}
				out = append(out, p)
				continue
			}
			if sel.String() == "secret" || sel.String() == "previousSecret" || sel.String() == "secrets" {
				continue // any shape is checked by secretProblems, never printed
			}
			fs := in.field(schema, sel)
			if fs.bad {
				// The field's schema depends on a sibling (spec: #Specs[kind]).
				chosen := w.choose(schema, in, v)
				fs = w.info(chosen).field(chosen, sel)
			}
			out = append(out, w.walk(it.Value(), fs.schema, path)...)
		}
	case cue.ListKind:
		if !in.elem.Exists() {
			return nil
		}
		// By index, not v.List(): a list with one bad element (a resource
		// of an unknown kind) is an error as a whole, and its other
		// elements would go unchecked.
		for i := 0; ; i++ {
			sel := cue.Index(i)
			ev := v.LookupPath(cue.MakePath(sel))
			if !ev.Exists() {
				break
			}
			path := cue.MakePath(append(at.Selectors(), sel)...)
			out = append(out, w.walk(ev, in.elem, path)...)
		}
	}
	return out
}

// choose fills schema with v's values of the fields the schema marks
// @hastack(select) (a resource's kind), so that a part of the schema
// chosen by them (spec: #Specs[kind]) resolves. A value that does not fit
// is left out: CUE reports it.
func (w *typoWalk) choose(schema cue.Value, in *schemaInfo, v cue.Value) cue.Value {
	key := schema.Path().String()
	var sels []cue.Selector
	var vals []cue.Value
	add := func(sel cue.Selector, f cue.Value) {
		if s, err := f.String(); err == nil {
			key += "\x00" + s
			sels, vals = append(sels, sel), append(vals, f)
		}
	}
	if in.selects != nil {
		// The selectors the schema declares: a lookup each, not a walk of
		// v's fields.
		for _, sel := range in.selects {
			if f := v.LookupPath(cue.MakePath(sel)); f.Exists() {
				add(sel, f)
			}
		}
	} else if it, err := v.Fields(); err == nil {
		// A schema that is an error alone lists no fields: v's own carry
		// the schema's attributes. Found once, they are the schema's.
		for it.Next() {
			if a := it.Value().Attribute("hastack"); a.Err() == nil && a.Contents() == "select" {
				add(it.Selector(), it.Value())
			}
		}
		if len(sels) > 0 {
			in.selects = sels
		}
	}
	if len(sels) == 0 {
		return schema
	}
	if c, ok := w.chosen[key]; ok {
		return c
	}
	for i, sel := range sels {
		if filled := schema.FillPath(cue.MakePath(sel), vals[i]); filled.Err() == nil {
			schema = filled
		}
	}
	w.chosen[key] = schema
	return schema
}

// hasInputs reports whether schema marks its undeclared fields as the
// stack's own inputs (#inputs: true in hastack.dev/schema/stack's #Stack).
func hasInputs(schema cue.Value) bool {
	b, err := schema.LookupPath(cue.MakePath(cue.Def("#inputs"))).Bool()
	return err == nil && b
}

// declared reports whether sel is one of the known fields of a schema, or
// the schema has a pattern constraint such as [string]: #Cluster that
// covers it. The `...` of an open struct is a pattern too, but of top (_):
// it does not count. (LookupPath cannot tell: in an open struct every name
// "exists", as _.)
func declared(known []string, pattern bool, sel cue.Selector) bool {
	for _, k := range known {
		if k == sel.Unquoted() {
			return true
		}
	}
	return pattern
}

// hasPattern reports whether schema has a pattern constraint other than
// the `...` of an open struct.
func hasPattern(schema cue.Value) bool {
	p := schema.LookupPath(cue.MakePath(cue.AnyString))
	return p.Exists() && p.IncompleteKind() != cue.TopKind
}

// schemaField returns the schema of field sel: regular, optional or
// required, or the pattern constraint ([string]: T) that covers it.
func schemaField(schema cue.Value, sel cue.Selector) cue.Value {
	for _, s := range []cue.Selector{sel, sel.Optional(), sel.Required(), cue.AnyString} {
		if f := schema.LookupPath(cue.MakePath(s)); f.Exists() {
			return f
		}
	}
	return cue.Value{}
}

// unknownMsg names the unknown field and, when one of the known fields is
// close, the field the person probably meant.
func unknownMsg(sel cue.Selector, known []string) string {
	name := sel.Unquoted()
	msg := fmt.Sprintf("unknown field %q", name)
	if best := nearest(name, known); best != "" {
		return msg + fmt.Sprintf(" (did you mean %q?)", best)
	}
	if len(known) > 0 {
		return msg + " (known fields: " + strings.Join(known, ", ") + ")"
	}
	return msg
}

// nearest is the name of known closest to name, if it is a near miss.
func nearest(name string, known []string) string {
	best, bestD := "", 3 // suggest only near misses
	for _, k := range known {
		if d := distance(strings.ToLower(name), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// misspelt reports whether field sel of v, which schema leaves to the
// stack's inputs, looks like a declared field that the user did not write
// (nodse for nodes): an input of that name would be a coincidence.
func (pl placer) misspelt(sel cue.Selector, known []string, v cue.Value) bool {
	best := nearest(sel.Unquoted(), known)
	if best == "" {
		return false
	}
	_, written := pl.firstUser(valuePositions(v.LookupPath(cue.MakePath(cue.Str(best)))))
	return !written
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// fieldNames lists the regular, optional and required fields schema declares,
// sorted, and those it marks @hastack(select) (choose), in schema order.
func fieldNames(schema cue.Value) (names []string, selects []cue.Selector) {
	if it, err := schema.Fields(cue.Optional(true)); err == nil {
		selects = []cue.Selector{} // listed: none is not unknown
		for it.Next() {
			sel := it.Selector()
			names = append(names, sel.Unquoted())
			if a := it.Value().Attribute("hastack"); a.Err() == nil && a.Contents() == "select" {
				selects = append(selects, cue.Str(sel.Unquoted()))
			}
		}
	}
	sort.Strings(names)
	return names, selects
}
