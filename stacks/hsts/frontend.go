package hsts

import (
	"fmt"
	"strings"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/modules"
	"hastack.dev/hastack/modules/keepalived"
)

// Frontend is the cluster's front end (schema/hsts/frontend.cue): the load
// balancers in front of the HSTS nodes. Its files are rendered by
// frontend.cue; here only what the driver needs: which nodes are load
// balancers, and the addresses a check or a test talks to.
type Frontend struct {
	VIP           string
	LoadBalancers []config.Node
	NodeAPIPort   int
	SSHPort       int
	FASPPort      int
	Balancer      string // "nginx" or "ipvs"
	// TransferIDs are users.ids: each transfer user's uid and gid.
	TransferIDs map[string][2]int
}

// decodeFrontend reads cl's frontend into c and makes its load balancers
// nodes the engine connects to: they are appended to cl.Nodes (once: a
// cluster is decoded more than once), while c.Nodes keeps the HSTS nodes
// only, which is what every rule of the Redis cluster counts (Sentinels,
// quorum, the primary's vote).
func decodeFrontend(c *Cluster, cl *config.Cluster) error {
	fv := cl.Value.LookupPath(cue.ParsePath("frontend"))
	var raw struct {
		VIP           string `json:"vip"`
		LoadBalancers []struct {
			Name string `json:"name"`
		} `json:"loadBalancers"`
		NodeAPI struct {
			Port int `json:"port"`
		} `json:"nodeAPI"`
		Transfer struct {
			SSHPort  int    `json:"sshPort"`
			FASPPort int    `json:"faspPort"`
			Balancer string `json:"balancer"`
		} `json:"transfer"`
	}
	if fv.Exists() {
		if err := fv.Decode(&raw); err != nil {
			return fmt.Errorf("decoding frontend: %v", err)
		}
	}
	lb := map[string]bool{}
	for _, b := range raw.LoadBalancers {
		lb[b.Name] = true
	}
	c.Nodes = nil
	for _, n := range cl.Nodes {
		if !lb[n.Name] {
			c.Nodes = append(c.Nodes, n)
		}
	}
	if !fv.Exists() {
		return nil
	}
	f := &Frontend{VIP: raw.VIP, NodeAPIPort: raw.NodeAPI.Port, SSHPort: raw.Transfer.SSHPort,
		FASPPort: raw.Transfer.FASPPort, Balancer: raw.Transfer.Balancer, TransferIDs: map[string][2]int{}}
	var ids map[string]struct {
		UID int `json:"uid"`
		GID int `json:"gid"`
	}
	if iv := cl.Value.LookupPath(cue.ParsePath("users.ids")); iv.Exists() {
		if err := iv.Decode(&ids); err != nil {
			return fmt.Errorf("decoding users.ids: %v", err)
		}
	}
	for u, id := range ids {
		f.TransferIDs[u] = [2]int{id.UID, id.GID}
	}
	lbs, err := config.DecodeNodes(fv.LookupPath(cue.ParsePath("loadBalancers")))
	if err != nil {
		return fmt.Errorf("decoding frontend.loadBalancers: %v", err)
	}
	f.LoadBalancers = lbs
	cl.AddNodes(lbs)
	c.Frontend = f
	return nil
}

// IsLoadBalancer says whether node is one of the front end's load balancers.
func (c *Cluster) IsLoadBalancer(node string) bool {
	if c.Frontend == nil {
		return false
	}
	for _, b := range c.Frontend.LoadBalancers {
		if b.Name == node {
			return true
		}
	}
	return false
}

// frontendNeeds is what a load balancer is asked: which addresses it has.
func (s *system) frontendNeeds() modules.Needs {
	return modules.Needs{Shared: keepalived.Needs(s.c.Frontend.VIP)}
}

// observeFrontend reads which load balancer holds the VIP into the plan's
// header, as live state: nothing is rendered from it (every load balancer
// is BACKUP with nopreempt), so a VIP that moved is never drift and never
// moved back. No holder, or two (a split brain), is a note.
func (s *system) observeFrontend(facts map[string]*engine.Facts, obs *engine.Observation) {
	f := s.c.Frontend
	if f == nil {
		return
	}
	var holders, unread []string
	for _, b := range f.LoadBalancers {
		var nf *modules.NodeFacts
		if fb := facts[b.Name]; fb != nil {
			nf = fb.Shared
		}
		switch holds, ok := keepalived.Holds(nf, f.VIP); {
		case !ok:
			unread = append(unread, b.Name)
		case holds:
			holders = append(holders, b.Name)
		}
	}
	switch len(holders) {
	case 0:
		obs.Summary += fmt.Sprintf("; VIP %s held by no load balancer", f.VIP)
		obs.Notes = append(obs.Notes, fmt.Sprintf("no load balancer holds the VIP %s: keepalived is down on all of them, or they cannot hear each other", f.VIP))
	case 1:
		obs.Summary += fmt.Sprintf("; VIP %s on %s", f.VIP, holders[0])
	default:
		obs.Summary += fmt.Sprintf("; VIP %s on %s", f.VIP, strings.Join(holders, " and "))
		obs.Notes = append(obs.Notes, fmt.Sprintf("the VIP %s is on %s at once: the load balancers do not hear each other's VRRP adverts (multicast dropped? try frontend.vrrp.unicast)", f.VIP, strings.Join(holders, " and ")))
	}
	if len(unread) > 0 {
		obs.Notes = append(obs.Notes, fmt.Sprintf("not read whether %s hold the VIP", strings.Join(unread, ", ")))
	}
}
