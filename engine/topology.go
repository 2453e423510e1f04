package engine

import (
	"fmt"
	"sort"
	"strings"

	"hastack.dev/hastack/engine/config"
)

// Primary is the decision about which node is Redis primary now.
type Primary struct {
	Node    string `json:"node"`
	Source  string `json:"source"` // "sentinels" or "bootstrap"
	Note    string `json:"note,omitempty"`
	Answers int    `json:"answers"` // Sentinels that answered
}

// LivePrimary asks the gathered Sentinel answers which node is primary. The
// config's primary is only the bootstrap choice, used when no Sentinel
// answers (a new cluster). Sentinels that disagree are an error: nothing
// that touches Redis or Sentinel may be planned then.
func LivePrimary(cl *config.Cluster, facts map[string]*Facts) (Primary, error) {
	votes := map[string][]string{}
	answered := 0
	// A node that refuses the password, or answers garbage, could be
	// anything: planning as if it were new would restart a live cluster.
	for _, n := range cl.Nodes {
		f := facts[n.Name]
		if f == nil {
			continue
		}
		for what, st := range map[string]string{"Sentinel": f.Topology.SentinelState, "Redis": f.Topology.RedisState} {
			switch st {
			case "auth-failed":
				return Primary{}, fmt.Errorf("node %s: its %s refuses the configured password; hastack will not plan against a cluster it cannot read (to change the password, see docs/operations.md)", n.Name, what)
			case "error":
				return Primary{}, fmt.Errorf("node %s: its %s answered with an error; hastack will not plan against a cluster it cannot read", n.Name, what)
			}
		}
	}
	for _, n := range cl.Nodes {
		f := facts[n.Name]
		if f == nil || !f.Topology.SentinelUp {
			continue
		}
		answered++
		if p := f.Topology.SentinelPrimary; p != "" {
			votes[p] = append(votes[p], n.Name)
		}
	}
	if len(votes) == 0 {
		// Without Sentinels, a running Redis that says it is primary must
		// be the bootstrap primary, or the cluster has a history we do not
		// know.
		for _, n := range cl.Nodes {
			if f := facts[n.Name]; f != nil && f.Topology.RedisRole == "master" && n.Name != cl.Primary {
				return Primary{}, fmt.Errorf("no Sentinel names a primary, but %s's Redis runs as primary and the config's bootstrap primary is %s: start the Sentinels, or fix the cluster by hand", n.Name, cl.Primary)
			}
		}
		return Primary{Node: cl.Primary, Source: "bootstrap", Answers: answered,
			Note: "no Sentinel names a primary yet: using the config's bootstrap primary"}, nil
	}
	if len(votes) > 1 {
		var parts []string
		for addr, who := range votes {
			sort.Strings(who)
			parts = append(parts, fmt.Sprintf("%s name %s", strings.Join(who, ", "), addr))
		}
		sort.Strings(parts)
		return Primary{}, fmt.Errorf("the Sentinels disagree about the primary (%s): wait for the failover to finish, or repair the cluster by hand; hastack will not touch Redis or Sentinel now", strings.Join(parts, "; "))
	}
	var addr string
	var who []string
	for a, w := range votes {
		addr, who = a, w
	}
	ip, port, _ := strings.Cut(addr, " ")
	if port != fmt.Sprint(cl.RedisPort) {
		return Primary{}, fmt.Errorf("the Sentinels name %s as primary, but the Redis port is %d", addr, cl.RedisPort)
	}
	for _, n := range cl.Nodes {
		if n.IP == ip {
			p := Primary{Node: n.Name, Source: "sentinels", Answers: answered}
			var notes []string
			if len(who) <= len(cl.Nodes)/2 {
				notes = append(notes, fmt.Sprintf("only %d of %d Sentinels answered", len(who), len(cl.Nodes)))
			}
			for _, m := range cl.Nodes {
				t := facts[m.Name]
				if m.Name != n.Name && t != nil && t.Topology.RedisRole == "master" {
					notes = append(notes, fmt.Sprintf("%s's Redis still says it is primary: a failover is settling, and Sentinel will turn it into a replica", m.Name))
				}
			}
			p.Note = strings.Join(notes, "; ")
			return p, nil
		}
	}
	return Primary{}, fmt.Errorf("the Sentinels name %s as primary, which is not a node of this cluster", ip)
}
