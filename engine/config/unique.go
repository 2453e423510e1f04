package config

import (
	"fmt"
	"strconv"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
)

// Uniqueness is checked here in Go, in one pass over every node of every
// cluster, rather than as rules of the schema: CUE compares pairs of list
// elements, and a pairwise rule took 16 s for 201 nodes; a CUE struct keyed
// by the value is linear but still cost 0.4 s for 1,001 nodes. A map costs
// microseconds, and it sees every cluster at once: a node's IP and its SSH
// address must be unique across the whole config, not only in its cluster.

// nodeKey says where a value was first seen.
type nodeKey struct {
	cluster string // the cluster's path, e.g. clusters.transfer
	index   int    // the node's index in its cluster
	at      string // a claim's path in its cluster (#claims); "" for a node
}

// claim is one entry of a system's #claims (schema/stack): a value it holds
// on the network besides its nodes' ips, such as a virtual IP.
type claim struct {
	At    string `json:"at"`    // path relative to the system
	Kind  string `json:"kind"`  // "address" shares the node ips' namespace
	Value string `json:"value"` // the value that must be unique
}

// uniqueProblems reports, at the later of the two, every node name used twice
// in one cluster, every node IP or SSH address (host:port) used twice in
// the config, and every claimed value (#claims) that another system claims
// too or, for an address, uses as a node's ip. Values of the wrong type are
// skipped: Validate reports them.
func (pl placer) uniqueProblems(clusters []*Cluster) Problems {
	var out Problems
	ips := map[string]nodeKey{}
	sshs := map[string]nodeKey{}
	claimed := map[string]map[string]nodeKey{"address": ips} // by kind
	for _, cl := range clusters {
		cpath := cl.Value.Path().String()
		names := map[string]nodeKey{}
		it, err := cl.Value.LookupPath(cue.ParsePath("nodes")).List()
		if err != nil {
			continue
		}
		for i := 0; it.Next(); i++ {
			n := it.Value()
			here := nodeKey{cluster: cpath, index: i}
			if name, ok := stringAt(n, "name"); ok {
				if first, dup := seen(names, name, here); dup {
					out = append(out, pl.nodeProblem(cl, i, "name", fmt.Sprintf(
						"node name %q is already used by %s; node names must be unique", name, first.in(cpath))))
				}
			}
			if ip, ok := stringAt(n, "ip"); ok {
				if first, dup := seen(ips, ip, here); dup {
					out = append(out, pl.nodeProblem(cl, i, "ip", fmt.Sprintf(
						"ip %q is already used by %s; every node needs its own private address", ip, first.in(cpath))))
				}
			}
			host, hok := stringAt(n, "ssh.host")
			port, pok := intAt(n, "ssh.port")
			if hok && pok {
				addr := host + ":" + strconv.FormatInt(port, 10)
				if first, dup := seen(sshs, addr, here); dup {
					out = append(out, pl.nodeProblem(cl, i, "ssh", fmt.Sprintf(
						"ssh address %s is already used by %s; each node needs its own SSH address", addr, first.in(cpath))))
				}
			}
		}
		out = append(out, pl.claimProblems(cl, claimed)...)
	}
	return out
}

// claimProblems records cl's claims in claimed and reports each one seen
// before in another system. A clash within cl is its schema's to report
// (#problems), with a message that knows what the values are.
func (pl placer) claimProblems(cl *Cluster, claimed map[string]map[string]nodeKey) Problems {
	var out Problems
	cpath := cl.Value.Path().String()
	it, err := cl.Value.LookupPath(cue.MakePath(cue.Def("#claims"))).List()
	if err != nil {
		return nil // a system that claims nothing
	}
	for it.Next() {
		var c claim
		if it.Value().Decode(&c) != nil || c.At == "" || c.Kind == "" {
			continue // a value of the wrong type: Validate reports it
		}
		m := claimed[c.Kind]
		if m == nil {
			m = map[string]nodeKey{}
			claimed[c.Kind] = m
		}
		first, dup := seen(m, c.Value, nodeKey{cluster: cpath, at: c.At})
		if !dup || first.cluster == cpath {
			continue
		}
		at := cue.ParsePath(c.At)
		p := Problem{
			Path: cue.MakePath(append(cl.Value.Path().Selectors(), at.Selectors()...)...).String(),
			Msg: fmt.Sprintf("%s %s is already used by %s; it must be unique across the config folder (one network)",
				c.Kind, c.Value, first.in(cpath)),
		}
		if pos, ok := pl.locate(cl.Value, at); ok {
			pl.set(&p, pos)
		}
		out = append(out, p)
	}
	return out
}

// nameProblems reports a name used by both a cluster and a stack: locks and
// plans go by name. clusters is sorted by name.
func (pl placer) nameProblems(clusters []*Cluster) Problems {
	var out Problems
	for i := 1; i < len(clusters); i++ {
		if a, b := clusters[i-1], clusters[i]; a.Name == b.Name {
			p := Problem{Path: b.Value.Path().String(), Msg: fmt.Sprintf(
				"the name %q is already used by %s: a cluster and a stack need names of their own", b.Name, a.Value.Path())}
			if pos, ok := pl.locate(b.Value, cue.Path{}); ok {
				pl.set(&p, pos)
			}
			out = append(out, p)
		}
	}
	return out
}

// seen records k at here unless it was seen before, and returns where.
func seen(m map[string]nodeKey, k string, here nodeKey) (nodeKey, bool) {
	if first, ok := m[k]; ok {
		return first, true
	}
	m[k] = here
	return here, false
}

// in names the node k as seen from cluster cpath: nodes[0] in the same
// cluster, clusters.other.nodes[0] in another.
func (k nodeKey) in(cpath string) string {
	if k.at != "" {
		return k.cluster + "." + k.at
	}
	if k.cluster == cpath {
		return fmt.Sprintf("nodes[%d]", k.index)
	}
	return fmt.Sprintf("%s.nodes[%d]", k.cluster, k.index)
}

// nodeProblem is a problem at nodes[i].<field> of cl.
func (pl placer) nodeProblem(cl *Cluster, i int, field, msg string) Problem {
	at := cue.ParsePath(fmt.Sprintf("nodes[%d].%s", i, field))
	path := cue.MakePath(append(cl.Value.Path().Selectors(), at.Selectors()...)...)
	p := Problem{Path: path.String(), Msg: msg}
	if pos, ok := pl.locate(cl.Value, at); ok {
		pl.set(&p, pos)
	}
	return p
}

// stringAt returns the concrete string at path under v (its default, when
// it has one, such as ssh.host's *ip).
func stringAt(v cue.Value, path string) (string, bool) {
	f, _ := v.LookupPath(cue.ParsePath(path)).Default()
	s, err := f.String()
	return s, err == nil
}

// intAt is stringAt for integers.
func intAt(v cue.Value, path string) (int64, bool) {
	f, _ := v.LookupPath(cue.ParsePath(path)).Default()
	n, err := f.Int64()
	return n, err == nil
}

// MaxConfigNodes bounds the nodes written in a config, all systems
// together, and MaxSystemNodes those of one system. Evaluating a schema
// costs about 0.2 ms a node (a 1 MiB file of 27,000 nodes took 14 s and
// 1.8 GB), so a config past them is refused before CUE evaluates anything,
// with this one problem. A driver's schema may allow fewer (an HSTS cluster
// has at most 99 nodes, a rule reported with every other problem).
const (
	MaxConfigNodes = 5000
	MaxSystemNodes = 2000
)

// tooManyNodes counts the elements of every list written as the value of a
// field named nodes in the parsed files, and reports the list that has more
// than MaxSystemNodes or brings the count past MaxConfigNodes. (A list built
// by a comprehension is the user's own code and is not counted.)
func (pl placer) tooManyNodes(files []*ast.File) Problems {
	total := 0
	var out Problems
	for _, f := range files {
		ast.Walk(f, func(n ast.Node) bool {
			field, ok := n.(*ast.Field)
			if !ok || len(out) > 0 {
				return len(out) == 0
			}
			name, _, _ := ast.LabelName(field.Label)
			list, ok := field.Value.(*ast.ListLit)
			if name != "nodes" || !ok {
				return true
			}
			var msg string
			switch total += len(list.Elts); {
			case len(list.Elts) > MaxSystemNodes:
				msg = fmt.Sprintf("this list has more than %d nodes, which is more than hastack checks for one cluster or stack", MaxSystemNodes)
			case total > MaxConfigNodes:
				msg = fmt.Sprintf("the config lists more than %d nodes, all clusters and stacks together, which is more than hastack checks", MaxConfigNodes)
			default:
				return true
			}
			p := Problem{Msg: msg}
			pl.set(&p, field.Pos())
			out = append(out, p)
			return true
		}, nil)
	}
	return out
}
