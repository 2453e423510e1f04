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
	w := typoWalk{pl: pl, chosen: map[string]cue.Value{}}
	return w.walk(v, schema, at)
}

// typoWalk is one unknownFields walk.
type typoWalk struct {
	pl placer
	// chosen holds the schemas picked by a selector field (choose), by
	// the schema's path and the selectors' values: a thousand resources
	// of three kinds fill the schema three times.
	chosen map[string]cue.Value
}

func (w *typoWalk) walk(v, schema cue.Value, at cue.Path) Problems {
	var out Problems
	if schema.IncompleteKind() == cue.BottomKind || schema.Err() != nil {
		// A schema whose shape depends on v's own values (a resource's
		// kind picks its spec: spec: #Specs[kind]) is incomplete alone:
		// ask it again with them.
		schema = w.choose(schema, v)
	}
	switch schema.IncompleteKind() {
	case cue.StructKind:
		it, err := v.Fields()
		if err != nil {
			return nil
		}
		known, pattern := fieldNames(schema), hasPattern(schema)
		inputs := hasInputs(schema)
		for it.Next() {
			sel := it.Selector()
			path := cue.MakePath(append(at.Selectors(), sel)...)
			if !declared(known, pattern, sel) {
				if inputs && !w.pl.misspelt(sel, known, v) {
					continue // the stack's own input: it has no schema here
				}
				p := Problem{Path: path.String(), Msg: unknownMsg(sel, known)}
				if pos, ok := w.pl.firstUser(valuePositions(it.Value())); ok {
					w.pl.set(&p, pos)
				}
				out = append(out, p)
				continue
			}
			if sel.String() == "secret" || sel.String() == "previousSecret" {
				continue // any shape is checked by secretProblems, never printed
			}
			fs := schemaField(schema, sel)
			if fs.Err() != nil {
				// The field's schema depends on a sibling (spec: #Specs[kind]).
				fs = schemaField(w.choose(schema, v), sel)
			}
			out = append(out, w.walk(it.Value(), fs, path)...)
		}
	case cue.ListKind:
		elem := schema.LookupPath(cue.MakePath(cue.AnyIndex))
		if !elem.Exists() {
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
			out = append(out, w.walk(ev, elem, path)...)
		}
	}
	return out
}

// choose fills schema with v's values of the fields the schema marks
// @hastack(select) (a resource's kind), so that a part of the schema
// chosen by them (spec: #Specs[kind]) resolves. A value that does not fit
// is left out: CUE reports it.
func (w *typoWalk) choose(schema, v cue.Value) cue.Value {
	it, err := v.Fields()
	if err != nil {
		return schema
	}
	key := schema.Path().String()
	var sels []cue.Selector
	var vals []cue.Value
	for it.Next() {
		f := it.Value()
		if a := f.Attribute("hastack"); a.Err() != nil || a.Contents() != "select" {
			continue
		}
		s, err := f.String()
		if err != nil {
			continue
		}
		key += "\x00" + s
		sels, vals = append(sels, it.Selector()), append(vals, f)
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
// sorted.
func fieldNames(schema cue.Value) []string {
	var names []string
	if it, err := schema.Fields(cue.Optional(true)); err == nil {
		for it.Next() {
			names = append(names, it.Selector().Unquoted())
		}
	}
	sort.Strings(names)
	return names
}
