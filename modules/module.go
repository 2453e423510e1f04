// Package modules holds hastack's generic resource types. A module is one
// kind of resource (file, conf, command, service, firewall, package ...);
// product modules (packages below this one) register theirs with
// Register.
// Like pyinfra it splits facts from operations: Probe says what to read
// (facts shared by all resources of a node are gathered once, by one script
// per node: facts.go), Diff compares that with the desired state without
// touching the node, and the Change it returns carries out the work.
package modules

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// Resource is one piece of desired state on one node, as rendered by a stack.
type Resource struct {
	ID    string          `json:"id"`              // unique on its node, e.g. "file:/etc/x"
	Kind  string          `json:"kind"`            // module name
	Phase int             `json:"phase"`           // index into the stack's phases
	Watch []string        `json:"watch,omitempty"` // react when one of these resources changes
	Spec  json.RawMessage `json:"spec"`            // the module's own fields
}

// Action is what a change does, for symbols and counts.
type Action string

const (
	Create  Action = "create"
	Update  Action = "update"
	Delete  Action = "delete"
	Run     Action = "run"   // a command runs
	Start   Action = "start" // service actions
	Stop    Action = "stop"
	Restart Action = "restart"
	Enable  Action = "enable"
)

// Change is what Diff found. Everything exported is safe to print and save:
// secrets appear only as secret.Shown.
type Change struct {
	Action        Action   `json:"action"`
	Summary       string   `json:"summary"`                 // one line
	Diff          string   `json:"diff,omitempty"`          // unified diff for files
	Commands      []string `json:"commands,omitempty"`      // command lines that will run
	Unpredictable bool     `json:"unpredictable,omitempty"` // a command with no guard: its effect is not known
	Reason        string   `json:"reason,omitempty"`        // why a watched resource acts
	Live          bool     `json:"live,omitempty"`          // applied to the running server: watchers need no restart

	apply func(ctx context.Context, h host.Host) error // carries what Apply needs (may hold secrets)
	file  *host.File                                   // the file a file or conf change writes
	join  *joinPart                                    // how it runs in one command with the next ones (join.go)
}

// Env is what Diff may know beyond the resource and its fact.
type Env struct {
	Secret    secret.Secret
	Triggered []string        // watched resources that change in this plan
	Stopped   map[string]bool // units an earlier phase of this plan stops
	Node      string          // node name
	// planned holds the accounts that user and group resources diffed
	// earlier on this node create in this plan ("user NAME" → uid, "group
	// NAME" → gid): a file may be owned by an account the same apply adds.
	planned map[string]int
}

// plan records an account this plan creates (user and group Diff).
func (e *Env) plan(kind, name string, id int) {
	if e.planned == nil {
		e.planned = map[string]int{}
	}
	e.planned[kind+" "+name] = id
}

// accountID is an account's id on the node, or the one this plan gives it.
func (e *Env) accountID(nf *NodeFacts, kind, name string) (int, bool) {
	table := nf.Users
	if kind == "group" {
		table = nf.Groups
	}
	if id, ok := table[name]; ok {
		return id, true
	}
	id, ok := e.planned[kind+" "+name]
	return id, ok
}

// Module is one resource kind.
type Module interface {
	// Probe says what r reads of its node: shared facts, and a read-only
	// POSIX sh snippet of its own when it needs one.
	Probe(r *Resource) (Probe, error)
	// Diff returns the change that brings the node to r, or nil when the
	// node already matches.
	Diff(r *Resource, f *Fact, env *Env) (*Change, error)
}

var registry = map[string]Module{}

func register(kind string, m Module) { registry[kind] = m }

// Register registers a resource kind (from a product module's init).
func Register(kind string, m Module) { register(kind, m) }

// Lookup returns the module of a kind.
func Lookup(kind string) (Module, error) {
	m, ok := registry[kind]
	if !ok {
		return nil, fmt.Errorf("unknown resource kind %q", kind)
	}
	return m, nil
}

// Kinds lists the registered kinds.
func Kinds() []string {
	var ks []string
	for k := range registry {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Apply carries out a change that Diff returned.
func (c *Change) Apply(ctx context.Context, h host.Host) error {
	if c.apply == nil {
		return nil
	}
	return c.apply(ctx, h)
}

// SetApply sets what Apply does (for product modules' Diff).
func (c *Change) SetApply(f func(ctx context.Context, h host.Host) error) { c.apply = f }

// DecodeSpec decodes r's spec into v (a product module's <kind>Spec).
func DecodeSpec(r *Resource, v any) error { return decodeSpec(r, v) }

func decodeSpec(r *Resource, v any) error {
	if err := json.Unmarshal(r.Spec, v); err != nil {
		return fmt.Errorf("%s: bad spec: %v", r.ID, err)
	}
	return nil
}
