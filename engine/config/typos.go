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
	var out Problems
	switch schema.IncompleteKind() {
	case cue.StructKind:
		it, err := v.Fields()
		if err != nil {
			return nil
		}
		for it.Next() {
			sel := it.Selector()
			path := cue.MakePath(append(at.Selectors(), sel)...)
			if !declared(schema, sel) {
				p := Problem{Path: path.String(), Msg: unknownMsg(sel, schema)}
				if pos, ok := pl.firstUser(valuePositions(it.Value())); ok {
					pl.set(&p, pos)
				}
				out = append(out, p)
				continue
			}
			if sel.String() == "secret" || sel.String() == "previousSecret" {
				continue // any shape is checked by secretProblems, never printed
			}
			out = append(out, pl.unknownFields(it.Value(), schemaField(schema, sel), path)...)
		}
	case cue.ListKind:
		elem := schema.LookupPath(cue.MakePath(cue.AnyIndex))
		it, err := v.List()
		if err != nil || !elem.Exists() {
			return nil
		}
		for it.Next() {
			path := cue.MakePath(append(at.Selectors(), it.Selector())...)
			out = append(out, pl.unknownFields(it.Value(), elem, path)...)
		}
	}
	return out
}

// declared reports whether schema names field sel, or has a pattern
// constraint such as [string]: #Cluster that covers it. The `...` of an open
// struct is a pattern too, but of top (_): it does not count.
// (LookupPath cannot tell: in an open struct every name "exists", as _.)
func declared(schema cue.Value, sel cue.Selector) bool {
	for _, k := range fieldNames(schema) {
		if k == sel.Unquoted() {
			return true
		}
	}
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

// unknownMsg names the unknown field and, when one is close, the field the
// person probably meant.
func unknownMsg(sel cue.Selector, schema cue.Value) string {
	name := sel.Unquoted()
	known := fieldNames(schema)
	msg := fmt.Sprintf("unknown field %q", name)
	best, bestD := "", 3 // suggest only near misses
	for _, k := range known {
		if d := distance(strings.ToLower(name), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" {
		return msg + fmt.Sprintf(" (did you mean %q?)", best)
	}
	if len(known) > 0 {
		return msg + " (known fields: " + strings.Join(known, ", ") + ")"
	}
	return msg
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
