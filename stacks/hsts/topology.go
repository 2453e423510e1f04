package hsts

import (
	"fmt"
	"sort"
	"strings"

	"hastack.dev/hastack/modules/redis"
)

// Primary is the decision about which node is Redis primary now.
type Primary struct {
	Node    string `json:"node"`
	Source  string `json:"source"` // "sentinels" or "bootstrap"
	Note    string `json:"note,omitempty"`
	Answers int    `json:"answers"` // Sentinels that answered
}

// Topology is one node's answer about Redis roles.
type Topology struct {
	SentinelState   string // "up", "down", "auth-failed" or "error"
	RedisState      string // the same for Redis
	SentinelUp      bool   // the node's Sentinel answered
	SentinelPrimary string // "ip port" it names as primary, "" when none
	RedisUp         bool
	RedisRole       string // "master" or "slave"
	RedisPrimary    string // for a replica: "ip port" it replicates from
	RedisLinkUp     bool   // for a replica: master_link_status:up
}

// topologyOf turns the node's answers into its Topology.
func topologyOf(s redis.SentinelView, r redis.RedisView) Topology {
	t := Topology{SentinelState: s.State, RedisState: r.State}
	t.SentinelUp = s.State == "up"
	t.SentinelPrimary = s.Primary
	if r.State == "up" {
		t.RedisUp, t.RedisRole, t.RedisLinkUp = true, r.Role, r.LinkUp
		if r.PrimaryHost != "" {
			t.RedisPrimary = r.PrimaryHost + " " + r.PrimaryPort
		}
	}
	return t
}

// Vote is the Sentinels' answers about the primary: the one count that
// planning, the rollout's gates and check all decide on.
type Vote struct {
	Answered int                 // Sentinels that answered
	Votes    map[string][]string // "ip port" named → the nodes whose Sentinel names it, sorted
}

// Tally counts what the answering Sentinels name, in nodes' order.
func Tally(nodes []string, tops map[string]Topology) Vote {
	v := Vote{Votes: map[string][]string{}}
	for _, n := range nodes {
		t, ok := tops[n]
		if !ok || !t.SentinelUp {
			continue
		}
		v.Answered++
		if t.SentinelPrimary != "" {
			v.Votes[t.SentinelPrimary] = append(v.Votes[t.SentinelPrimary], n)
		}
	}
	return v
}

// Majority is the address more than half of all total Sentinels name, or "".
func (v Vote) Majority(total int) string {
	for addr, who := range v.Votes {
		if len(who) > total/2 {
			return addr
		}
	}
	return ""
}

// nodeAt is the node of c whose IP is addr's ("ip port"), or "".
func (c *Cluster) nodeAt(addr string) string {
	ip, _, _ := strings.Cut(addr, " ")
	for _, n := range c.Nodes {
		if n.IP == ip {
			return n.Name
		}
	}
	return ""
}

func (c *Cluster) nodeNames() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Name
	}
	return out
}

// LivePrimary asks the gathered Sentinel answers which node is primary. The
// config's primary is only the bootstrap choice, used when no Sentinel
// answers (a new cluster). Sentinels that disagree are an error: nothing
// that touches Redis or Sentinel may be planned then.
func LivePrimary(cl *Cluster, tops map[string]Topology) (Primary, error) {
	// A node that refuses the password, or answers garbage, could be
	// anything: planning as if it were new would restart a live cluster.
	for _, n := range cl.Nodes {
		t, ok := tops[n.Name]
		if !ok {
			continue
		}
		for _, st := range []struct{ what, state string }{{"Sentinel", t.SentinelState}, {"Redis", t.RedisState}} {
			switch st.state {
			case "auth-failed":
				return Primary{}, fmt.Errorf("node %s: its %s refuses the configured password; hastack will not plan against a cluster it cannot read (to change the password, see docs/operations.md)", n.Name, st.what)
			case "error":
				return Primary{}, fmt.Errorf("node %s: its %s answered with an error; hastack will not plan against a cluster it cannot read", n.Name, st.what)
			}
		}
	}
	vote := Tally(cl.nodeNames(), tops)
	if len(vote.Votes) == 0 {
		// Without Sentinels, a running Redis that says it is primary must
		// be the bootstrap primary, or the cluster has a history we do not
		// know.
		for _, n := range cl.Nodes {
			if t, ok := tops[n.Name]; ok && t.RedisRole == "master" && n.Name != cl.Primary {
				return Primary{}, fmt.Errorf("no Sentinel names a primary, but %s's Redis runs as primary and the config's bootstrap primary is %s: start the Sentinels, or fix the cluster by hand", n.Name, cl.Primary)
			}
		}
		return Primary{Node: cl.Primary, Source: "bootstrap", Answers: vote.Answered,
			Note: "no Sentinel names a primary yet: using the config's bootstrap primary"}, nil
	}
	if len(vote.Votes) > 1 {
		var parts []string
		for addr, who := range vote.Votes {
			who = append([]string(nil), who...)
			sort.Strings(who)
			parts = append(parts, fmt.Sprintf("%s name %s", strings.Join(who, ", "), addr))
		}
		sort.Strings(parts)
		return Primary{}, fmt.Errorf("the Sentinels disagree about the primary (%s): wait for the failover to finish, or repair the cluster by hand; hastack will not touch Redis or Sentinel now", strings.Join(parts, "; "))
	}
	var addr string
	var who []string
	for a, w := range vote.Votes {
		addr, who = a, w
	}
	ip, port, _ := strings.Cut(addr, " ")
	if port != fmt.Sprint(cl.RedisPort) {
		return Primary{}, fmt.Errorf("the Sentinels name %s as primary, but the Redis port is %d", addr, cl.RedisPort)
	}
	node := cl.nodeAt(addr)
	if node == "" {
		return Primary{}, fmt.Errorf("the Sentinels name %s as primary, which is not a node of this cluster", ip)
	}
	p := Primary{Node: node, Source: "sentinels", Answers: vote.Answered}
	var notes []string
	if len(who) <= len(cl.Nodes)/2 {
		notes = append(notes, fmt.Sprintf("only %d of %d Sentinels answered", len(who), len(cl.Nodes)))
	}
	for _, m := range cl.Nodes {
		if t, ok := tops[m.Name]; ok && m.Name != node && t.RedisRole == "master" {
			notes = append(notes, fmt.Sprintf("%s's Redis still says it is primary: a failover is settling, and Sentinel will turn it into a replica", m.Name))
		}
	}
	p.Note = strings.Join(notes, "; ")
	return p, nil
}
