package hsts

import (
	"fmt"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/modules"
	"hastack.dev/hastack/stacks/lb"
)

// Frontend is the cluster's front end (schema/hsts/frontend.cue): the load
// balancers in front of the HSTS nodes. Its files are rendered by
// frontend.cue with stacks/lb; here only what the driver needs: which nodes are load
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
	isLB := map[string]bool{}
	for _, b := range raw.LoadBalancers {
		isLB[b.Name] = true
	}
	c.Nodes = nil
	for _, n := range cl.Nodes {
		if !isLB[n.Name] {
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
	lbs, err := lb.Decode(cl, "frontend.loadBalancers")
	if err != nil {
		return err
	}
	f.LoadBalancers = lbs
	c.Frontend = f
	return nil
}

// IsLoadBalancer says whether node is one of the front end's load balancers.
func (c *Cluster) IsLoadBalancer(node string) bool {
	return c.Frontend != nil && lb.Is(c.Frontend.LoadBalancers, node)
}

// frontendNeeds is what a load balancer is asked: which addresses it has.
func (s *system) frontendNeeds() modules.Needs { return lb.Needs(s.c.Frontend.VIP) }

// observeFrontend reads which load balancer holds the VIP into the plan's
// header, as live state: nothing is rendered from it (every load balancer
// is BACKUP with nopreempt), so a VIP that moved is never drift and never
// moved back.
func (s *system) observeFrontend(facts map[string]*engine.Facts, obs *engine.Observation) {
	if f := s.c.Frontend; f != nil {
		lb.ObserveHolder(facts, f.VIP, f.LoadBalancers, "frontend.vrrp.unicast", obs)
	}
}
