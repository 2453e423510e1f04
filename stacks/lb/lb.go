// Package lb is the Go side of lb.cue beside it: load balancers sharing a
// virtual IP, as the drivers of stacks/hsts (the front end) and
// stacks/shares (type 1) see them: which nodes they are, what each is
// asked before planning, and who holds the VIP now (live state: nothing is
// rendered from it, so a VIP that moved is never drift).
package lb

import (
	"fmt"
	"slices"
	"strings"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/modules"
	"hastack.dev/hastack/modules/keepalived"
)

// Decode reads the load balancers at path of cl (a list of nodes, as
// config.DecodeNodes reads them) and makes them nodes the engine connects
// to: appended to cl.Nodes once (a system is decoded more than once).
func Decode(cl *config.Cluster, path string) ([]config.Node, error) {
	lbs, err := config.DecodeNodes(cl.Value.LookupPath(cue.ParsePath(path)))
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %v", path, err)
	}
	cl.AddNodes(lbs)
	return lbs, nil
}

// Is says whether node is one of lbs.
func Is(lbs []config.Node, node string) bool {
	return slices.ContainsFunc(lbs, func(n config.Node) bool { return n.Name == node })
}

// Needs is what a load balancer is asked: which addresses it has.
func Needs(vip string) modules.Needs {
	return modules.Needs{Shared: keepalived.Needs(vip)}
}

// ObserveHolder reads which of lbs holds vip into obs's summary, as live
// state. No holder, or two (a split brain), is a note; unicast names the
// config field that switches the adverts to unicast, for that note.
func ObserveHolder(facts map[string]*engine.Facts, vip string, lbs []config.Node, unicast string, obs *engine.Observation) {
	var holders, unread []string
	for _, b := range lbs {
		var nf *modules.NodeFacts
		if fb := facts[b.Name]; fb != nil {
			nf = fb.Shared
		}
		switch holds, ok := keepalived.Holds(nf, vip); {
		case !ok:
			unread = append(unread, b.Name)
		case holds:
			holders = append(holders, b.Name)
		}
	}
	switch len(holders) {
	case 0:
		obs.Summary += fmt.Sprintf("; VIP %s held by no load balancer", vip)
		obs.Notes = append(obs.Notes, fmt.Sprintf("no load balancer holds the VIP %s: keepalived is down on all of them, or they cannot hear each other", vip))
	case 1:
		obs.Summary += fmt.Sprintf("; VIP %s on %s", vip, holders[0])
	default:
		obs.Summary += fmt.Sprintf("; VIP %s on %s", vip, strings.Join(holders, " and "))
		obs.Notes = append(obs.Notes, fmt.Sprintf("the VIP %s is on %s at once: the load balancers do not hear each other's VRRP adverts (multicast dropped? try %s)", vip, strings.Join(holders, " and "), unicast))
	}
	if len(unread) > 0 {
		obs.Notes = append(obs.Notes, fmt.Sprintf("not read whether %s hold the VIP", strings.Join(unread, ", ")))
	}
}
