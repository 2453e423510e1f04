package config

import (
	"cuelang.org/go/cue"
)

// rule is one entry of a #problems field in the schema (schema/hsts/rules.cue).
type rule struct {
	At  string `json:"at"`  // path relative to the cluster
	Msg string `json:"msg"` // what is wrong and what the seeds ask for
}

// ruleProblems reads #problems of one cluster. Each field is read on its
// own: a rule that cannot be evaluated (it reads a value of the wrong type,
// which Validate already reported) is skipped and hides no other rule.
//
// skipped lists the rules that could not be evaluated. When nothing else is
// wrong, that is a bug in the schema, and Load says so rather than pass.
func (pl placer) ruleProblems(cluster cue.Value) (out Problems, skipped []string) {
	pv := cluster.LookupPath(cue.MakePath(cue.Def("#problems")))
	if !pv.Exists() {
		return nil, nil // a stack with no rules of its own
	}
	it, err := pv.Fields()
	if err != nil {
		return nil, []string{"#problems"}
	}
	for it.Next() {
		var rules []rule
		if err := it.Value().Decode(&rules); err != nil {
			skipped = append(skipped, it.Selector().String())
			continue
		}
		for _, r := range rules {
			path := cue.MakePath(append(cluster.Path().Selectors(), cue.ParsePath(r.At).Selectors()...)...)
			p := Problem{Path: path.String(), Msg: r.Msg}
			if pos, ok := pl.locate(cluster, cue.ParsePath(r.At)); ok {
				pl.set(&p, pos)
			}
			out = append(out, p)
		}
	}
	return out, skipped
}
