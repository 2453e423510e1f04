// Package hsts is the driver of the HSTS stack (stack.cue beside it): it
// decodes a cluster's settings, reads the live primary from the Sentinels,
// renders the stack for it and keeps the cluster up during rollouts
// (a switchover before the primary's Redis restarts, health gates).
package hsts

import (
	"fmt"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
)

// Name is the driver's registered name.
const Name = "hsts"

func init() {
	engine.RegisterDriver(Name, driver{})
	// Every entry of `clusters` is an hsts.#Cluster.
	config.DefaultDriver("clusters", Name)
}

// Cluster is one HSTS cluster, decoded. Field meanings: docs/config.md.
type Cluster struct {
	*config.Cluster
	Design     string // "sentinel" (003) or "haproxy" (002)
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

	// Nodes are the HSTS nodes; config's Nodes also hold the front end's
	// load balancers, which the engine connects to (frontend.go).
	Nodes    []config.Node
	Frontend *Frontend // nil without a front end
}

// Users names the node user and the transfer users that get keystores,
// and the transfer users' docroot ("" when unset).
type Users struct {
	Node     string
	Transfer []string
	Docroot  string
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

// Decode reads the HSTS settings of cl, which Load has checked.
func Decode(cl *config.Cluster) (*Cluster, error) {
	var raw struct {
		Design     string `json:"design"`
		PrimarySet string `json:"primarySet"`
		Primary    string `json:"primary"`
		Redis      struct {
			Port int    `json:"port"`
			Save string `json:"save"`
		} `json:"redis"`
		Sentinel struct {
			Port            int `json:"port"`
			Quorum          int `json:"quorum"`
			DownAfter       int `json:"downAfterMilliseconds"`
			FailoverTimeout int `json:"failoverTimeoutMilliseconds"`
		} `json:"sentinel"`
		HAProxy *struct {
			Port int `json:"port"`
		} `json:"haproxy"`
		Users struct {
			Node     string   `json:"node"`
			Transfer []string `json:"transfer"`
			Docroot  string   `json:"docroot"`
		} `json:"users"`
		Rollout struct {
			Pause int `json:"pauseMilliseconds"`
			Gate  int `json:"gateTimeoutSeconds"`
		} `json:"rollout"`
		Firewall struct {
			Manage  bool   `json:"manage"`
			Persist string `json:"persist"`
		} `json:"firewall"`
		BearerToken struct {
			ExpiresAt      string `json:"expiresAt"`
			ScopeRole      string `json:"scopeRole"`
			TokenKeyLength int    `json:"tokenKeyLength"`
		} `json:"bearerToken"`
	}
	// The secret was decoded by config, apart, so that no error quotes it.
	if err := cl.Value.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decoding: %v", err)
	}
	c := &Cluster{Cluster: cl, Design: raw.Design, Primary: raw.Primary, PrimarySet: raw.PrimarySet,
		RedisPort: raw.Redis.Port, RedisSave: raw.Redis.Save,
		SentinelPort: raw.Sentinel.Port, Quorum: raw.Sentinel.Quorum,
		DownAfterMs: raw.Sentinel.DownAfter, FailoverTimeoutMs: raw.Sentinel.FailoverTimeout,
		RolloutPauseMs: raw.Rollout.Pause, GateTimeoutS: raw.Rollout.Gate,
		Users: Users(raw.Users), Firewall: Firewall(raw.Firewall), BearerToken: BearerToken(raw.BearerToken)}
	if raw.HAProxy != nil {
		c.HAProxyPort = raw.HAProxy.Port
	}
	if err := decodeFrontend(c, cl); err != nil {
		return nil, err
	}
	return c, nil
}

// ipOf is node's private IP, "" when it is not one of c's.
func (c *Cluster) ipOf(node string) string {
	for _, n := range c.Nodes {
		if n.Name == node {
			return n.IP
		}
	}
	return ""
}
