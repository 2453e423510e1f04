package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// Facts is what one node told us: the shared facts, each resource's own
// probe output, and the node's view of the Redis topology.
type Facts struct {
	Node      string
	Shared    *modules.NodeFacts
	Resources map[string][]byte // resource ID → its own probe's output
	Topology  Topology
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

type topoParams struct {
	RedisPort, SentinelPort int
	PrimarySet              string
}

// topoOf is what a node's topology facts are read with.
func topoOf(r *Rendered) topoParams {
	return topoParams{r.Cluster.RedisPort, r.Cluster.SentinelPort, r.Cluster.PrimarySet}
}

// gatherNode runs n's fact script, one exec, and reads its Redis and
// Sentinel beside it.
func gatherNode(ctx context.Context, n NodeSpec, tp topoParams, h host.Host, sec secret.Secret) (*Facts, error) {
	// The topology is read with the rest: the node's own Sentinel and Redis,
	// over TCP from the node while the script runs when the connector can,
	// else by redis-cli in the script.
	sentinel := &modules.SentinelAt{Addr: fmt.Sprintf("%s %d", n.IP, tp.SentinelPort), Set: tp.PrimarySet}
	redis := fmt.Sprintf("%s %d", n.IP, tp.RedisPort)
	d, direct := h.(host.Dialer)
	if direct {
		f, err := gatherWith(ctx, n, h, sec, modules.Needs{Sentinel: sentinel, Redis: redis, Direct: true}, func(nf *modules.NodeFacts) error {
			return nf.ReadRedis(ctx, d, sentinel, redis, sec)
		})
		if !errors.Is(err, modules.ErrNoForwarding) {
			return f, err
		}
	}
	return gatherWith(ctx, n, h, sec, modules.Needs{Sentinel: sentinel, Redis: redis}, nil)
}

// gatherWith runs n's fact script, asking also for extra, and alongside it
// read (when not nil), which completes the shared facts.
func gatherWith(ctx context.Context, n NodeSpec, h host.Host, sec secret.Secret, extra modules.Needs, read func(*modules.NodeFacts) error) (*Facts, error) {
	script, boundary, err := modules.FactScript(n.Resources, extra)
	if err != nil {
		return nil, err
	}
	side := &modules.NodeFacts{}
	readErr := make(chan error, 1)
	if read != nil {
		go func() { readErr <- read(side) }()
	} else {
		readErr <- nil
	}
	// On stdin: neither the password nor the script shows in a process list.
	res, err := h.Run(ctx, "sh -s", bytes.NewReader(secret.Fill([]byte(script), sec)))
	if rerr := <-readErr; rerr != nil {
		return nil, rerr
	}
	if err != nil {
		return nil, fmt.Errorf("reading facts: %w", err)
	}
	if res.Code != 0 {
		msg := strings.TrimSpace(string(res.Stderr))
		for _, v := range []secret.Secret{sec, sec.Previous()} {
			if !v.IsZero() {
				msg = strings.ReplaceAll(msg, v.Value(), secret.Shown)
			}
		}
		return nil, fmt.Errorf("reading facts: the fact script exited %d: %s", res.Code, msg)
	}
	nf, own, err := modules.ParseFacts(res.Stdout, boundary, n.Resources)
	if err != nil {
		return nil, fmt.Errorf("reading facts: %w", err)
	}
	if read != nil {
		nf.Sentinel, nf.Redis = side.Sentinel, side.Redis
	}
	return &Facts{Node: n.Name, Shared: nf, Resources: own, Topology: topologyOf(nf)}, nil
}

// topologyOf turns the node's answers into its Topology.
func topologyOf(nf *modules.NodeFacts) Topology {
	t := Topology{SentinelState: nf.Sentinel.State, RedisState: nf.Redis.State}
	t.SentinelUp = nf.Sentinel.State == "up"
	t.SentinelPrimary = nf.Sentinel.Primary
	if nf.Redis.State == "up" {
		t.RedisUp, t.RedisRole, t.RedisLinkUp = true, nf.Redis.Role, nf.Redis.LinkUp
		if nf.Redis.PrimaryHost != "" {
			t.RedisPrimary = nf.Redis.PrimaryHost + " " + nf.Redis.PrimaryPort
		}
	}
	return t
}
