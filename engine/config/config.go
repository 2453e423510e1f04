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
	// Clusters are every system (clusters and stacks together), sorted by
	// name. Only Name, Field and Value are set when Load reported problems.
	Clusters []*Cluster

	pl placer // places problems found after Load (SecretProblems)
}

// Cluster is one system of the config: an entry of `clusters` (the HSTS
// shorthand) or of `stacks` (any stack). Only what every system has is
// decoded here; a driver decodes its own settings from Value.
type Cluster struct {
	Name   string
	Field  string // "clusters", "stacks" or "webtiers": where the entry is written
	Driver string // the registered driver that observes and rolls it out; "" for plain resources
	Nodes  []Node
	Secret secret.Source
	// PreviousSecret is set while the password is being rotated: the
	// password the system may still use.
	PreviousSecret *secret.Source
	// Secrets are the named secrets (secrets: NAME: {file: PATH}) that
	// the stack's resources write as secret.NamedPlaceholder(NAME).
	Secrets map[string]secret.Source

	// Value is <Field>.<Name>, unified with its schema.
	Value cue.Value
}

// Path is where the system is written, e.g. clusters.transfer.
func (cl *Cluster) Path() string { return cl.Field + "." + quoteLabel(cl.Name) }

// Node is one machine of a system.
type Node struct {
	Name string
	IP   string // private address the services bind to ("" when the stack has none)
	SSH  SSH
}

// SSH is where hastack connects to a node.
type SSH struct {
	Host string
	Port int
	User string
	// PortSet and UserSet say the CUE gives them (not a schema default):
	// otherwise ~/.ssh/config's Port and User apply (docs/ssh.md).
	PortSet bool `json:"-"`
	UserSet bool `json:"-"`
}

// Fields are the top-level maps of systems, in the order they are listed.
var Fields = []string{"clusters", "stacks", "webtiers"}

var fieldDrivers = map[string]string{}

// DefaultDriver makes every entry of field that names no driver use
// driver: a driver registers the shorthand it owns (the HSTS driver,
// `clusters`) without the loader knowing it.
func DefaultDriver(field, driver string) { fieldDrivers[field] = driver }

// Cluster returns the cluster called name, or nil.
func (c *Config) Cluster(name string) *Cluster {
	for _, cl := range c.Clusters {
		if cl.Name == name {
			return cl
		}
	}
	return nil
}
