package config

import (
	"fmt"

	"cuelang.org/go/cue"
)

// decode fills cl from cl.Value, which has passed every check.
func decode(cl *Cluster) error {
	var raw struct {
		Design     string `json:"design"`
		PrimarySet string `json:"primarySet"`
		Primary    string `json:"primary"`
		Nodes      []struct {
			Name string `json:"name"`
			IP   string `json:"ip"`
			SSH  struct {
				Host string `json:"host"`
				Port int    `json:"port"`
				User string `json:"user"`
			} `json:"ssh"`
		} `json:"nodes"`
		Redis struct {
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
	// secret is decoded apart so that a decode error can never quote it.
	src, err := sourceOf(cl.Value.LookupPath(cue.ParsePath("secret")))
	if err != nil {
		return err
	}
	if pv := cl.Value.LookupPath(cue.ParsePath("previousSecret")); pv.Exists() {
		prev, err := sourceOf(pv)
		if err != nil {
			return err
		}
		cl.PreviousSecret = &prev
	}
	if err := cl.Value.Decode(&raw); err != nil {
		return fmt.Errorf("decoding: %v", err)
	}
	cl.Design, cl.Primary, cl.PrimarySet = raw.Design, raw.Primary, raw.PrimarySet
	for _, n := range raw.Nodes {
		cl.Nodes = append(cl.Nodes, Node{Name: n.Name, IP: n.IP, SSH: SSH(n.SSH)})
	}
	cl.RedisPort, cl.RedisSave = raw.Redis.Port, raw.Redis.Save
	cl.SentinelPort, cl.Quorum = raw.Sentinel.Port, raw.Sentinel.Quorum
	cl.DownAfterMs, cl.FailoverTimeoutMs = raw.Sentinel.DownAfter, raw.Sentinel.FailoverTimeout
	if raw.HAProxy != nil {
		cl.HAProxyPort = raw.HAProxy.Port
	}
	cl.RolloutPauseMs, cl.GateTimeoutS = raw.Rollout.Pause, raw.Rollout.Gate
	cl.Users = Users(raw.Users)
	cl.Firewall = Firewall(raw.Firewall)
	cl.BearerToken = BearerToken(raw.BearerToken)
	cl.Secret = src
	return nil
}
