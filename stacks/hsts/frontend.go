package hsts

import (
	"fmt"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/engine/config"
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
			IP   string `json:"ip"`
			SSH  struct {
				Host string `json:"host"`
				Port int    `json:"port"`
				User string `json:"user"`
			} `json:"ssh"`
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
	have := map[string]bool{}
	for _, n := range cl.Nodes {
		have[n.Name] = true
		if !lb[n.Name] {
			c.Nodes = append(c.Nodes, n)
		}
	}
	if !fv.Exists() {
		return nil
	}
	f := &Frontend{VIP: raw.VIP, NodeAPIPort: raw.NodeAPI.Port, SSHPort: raw.Transfer.SSHPort,
		FASPPort: raw.Transfer.FASPPort, Balancer: raw.Transfer.Balancer}
	lbs := fv.LookupPath(cue.ParsePath("loadBalancers"))
	for i, b := range raw.LoadBalancers {
		host := b.SSH.Host
		if host == "" {
			host = b.IP
		}
		n := config.Node{Name: b.Name, IP: b.IP, SSH: config.SSH{Host: host, Port: b.SSH.Port, User: b.SSH.User,
			PortSet: written(lbs, i, "port"), UserSet: written(lbs, i, "user")}}
		f.LoadBalancers = append(f.LoadBalancers, n)
		if !have[n.Name] {
			cl.Nodes = append(cl.Nodes, n)
		}
	}
	c.Frontend = f
	return nil
}

// written says whether load balancer i's ssh.field is written in the CUE
// rather than a schema default (then ~/.ssh/config may set it: docs/ssh.md).
func written(lbs cue.Value, i int, field string) bool {
	v := lbs.LookupPath(cue.MakePath(cue.Index(i), cue.Str("ssh"), cue.Str(field)))
	if !v.Exists() {
		return false
	}
	_, isDefault := v.Default()
	return !isDefault
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
