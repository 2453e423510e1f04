package modules

import "testing"

// For the tests of package modules_test, which import the product modules
// (they import this package: a test inside it could not).
var (
	StartNode   = startNode
	ResourceFor = resource
)

// Converge probes, diffs and applies r on the lab node, then checks that
// nothing is left to do (labNode.converge).
func (n *labNode) Converge(t *testing.T, r *Resource, env *Env) *Change { return n.converge(t, r, env) }

// Exec runs argv on the node as root, outside SSH (labNode.exec).
func (n *labNode) Exec(t *testing.T, argv ...string) string { return n.exec(t, argv...) }

// IrregularFacts are facts that hold p as a FIFO.
func IrregularFacts(p string) *NodeFacts {
	return &NodeFacts{Files: map[string]*FileFact{}, Dirs: map[string]*FileFact{}, Irregular: map[string]string{p: "a FIFO"}}
}
