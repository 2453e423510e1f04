// Package config loads a user's hastack folder: it overlays the CUE packages
// embedded in the binary, builds the user's package, checks it against the
// schemas and every rule of the seeds, and decodes each cluster for the
// engine.
package config

import (
	"cuelang.org/go/cue"

	"hastack.dev/hastack/internal/secret"
)

// Config is a loaded folder.
type Config struct {
	// Context built Root; the engine renders stacks in the same context.
	Context *cue.Context
	// Root is the whole user package, unified with the root schema.
	Root cue.Value
	// Clusters are sorted by name. Only Name and Value are set when Load
	// reported problems.
	Clusters []*Cluster

	pl placer // places problems found after Load (SecretProblems)
}

// Cluster is one entry of `clusters`, decoded. Field meanings: docs/config.md.
type Cluster struct {
	Name       string
	Design     string // "sentinel" (003) or "haproxy" (002)
	Nodes      []Node
	Primary    string // the node that starts as Redis primary
	PrimarySet string

	RedisPort         int
	RedisSave         string
	SentinelPort      int
	HAProxyPort       int // 0 unless Design is "haproxy"
	Quorum            int
	DownAfterMs       int
	FailoverTimeoutMs int

	RolloutPauseMs int // between adding or resetting Sentinels on a live cluster
	GateTimeoutS   int // how long a rollout waits for the cluster to be healthy

	Users       Users
	Firewall    Firewall
	BearerToken BearerToken
	Secret      secret.Source
	// PreviousSecret is set while the password is being rotated: the
	// password the cluster may still use.
	PreviousSecret *secret.Source

	// Value is clusters.<Name>, unified with hsts.#Cluster.
	Value cue.Value
}

// Node is one machine of a cluster.
type Node struct {
	Name string
	IP   string // private IPv4 address Redis and Sentinel bind to
	SSH  SSH
}

// SSH is where hastack connects to a node.
type SSH struct {
	Host string
	Port int
	User string
}

// Users names the node user and the transfer users that get keystores.
type Users struct {
	Node     string
	Transfer []string
}

// Firewall says whether and where hastack keeps the iptables rules.
type Firewall struct {
	Manage  bool
	Persist string
}

// BearerToken holds 002's bearer-token options.
type BearerToken struct {
	ExpiresAt      string // empty: one hour after creation
	ScopeRole      string
	TokenKeyLength int
}

// Cluster returns the cluster called name, or nil.
func (c *Config) Cluster(name string) *Cluster {
	for _, cl := range c.Clusters {
		if cl.Name == name {
			return cl
		}
	}
	return nil
}
