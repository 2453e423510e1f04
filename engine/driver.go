package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// A Driver knows what CUE cannot observe of one kind of system: the live
// state to render for, the extra facts that tells it, and how a rollout
// keeps the system up. Drivers register by name (RegisterDriver, from
// their init); a system names its driver (config.Cluster.Driver), and a
// system with none is plain resources.
type Driver interface {
	// Open decodes the driver's own settings of one system (once per run).
	Open(cl *config.Cluster) (System, error)
}

// System is one opened system.
type System interface {
	// Stack is the CUE stack to render (its phases and nodes) for the
	// inputs, a JSON-able map: Guess() first, then Observation.Inputs.
	Stack(ctx *cue.Context, inputs map[string]any) (cue.Value, error)
	// Guess is the inputs of the first render, made before any fact is
	// known: the common case, so that most runs render once.
	Guess() map[string]any
	// Needs are the extra facts to read on n besides its resources' own.
	Needs(n NodeSpec) modules.Needs
	// Observe reads the live state from every reached node's facts; an
	// error refuses to plan.
	Observe(facts map[string]*Facts) (Observation, error)
	// Rollout is the hooks apply calls for p (nil: none).
	Rollout(p *Plan, hosts map[string]host.Host, sec secret.Secret) Rollout
}

// Observation is what a driver read of the live system.
type Observation struct {
	// Inputs renders again when they differ from Guess().
	Inputs map[string]any
	// Live is the state the plan was made for, saved with it (its fields
	// are inlined in the plan's JSON): a saved plan whose Live differs
	// from a fresh one's is stale.
	Live json.RawMessage
	// Summary follows "Cluster NAME" in the plan's header.
	Summary string
	// Notes are printed under the header.
	Notes []string
	// NodeState is hashed into each node's fingerprint: state apply
	// depends on that no resource shows.
	NodeState map[string]string
}

// Rollout hooks into apply, node by node.
type Rollout interface {
	// Order is a phase's node order, given the plan's.
	Order(ph Phase, nodes []string) []string
	// Before runs before node's changes of phase; an error stops the node.
	Before(ctx context.Context, node string, phase int, changes []*ResourceChange, report func(Event)) error
	// After runs once node's changes of phase are done.
	After(ctx context.Context, node string, phase int, changes []*ResourceChange, report func(Event)) error
}

// PhaseOrders is implemented by a System whose phases may name an order
// (Phase.Order) other than the plan's.
type PhaseOrders interface {
	Orders() []string
}

// StaleLive is implemented by a System that says itself when a saved
// plan's Live no longer holds (only part of Live may matter).
type StaleLive interface {
	Stale(saved, fresh json.RawMessage) string
}

// Checker is implemented by a System that can verify a running system
// (hastack check) and run drills on it.
type Checker interface {
	Check(ctx context.Context, req CheckRequest) bool
}

// PartialChecker is a Checker that reports on a system with nodes down
// (a dead node is what an HA system is built to survive): check gives it
// the nodes it reached and names the others in CheckRequest.Unreachable,
// instead of stopping at the first connect error. Drills still need
// every node.
type PartialChecker interface {
	Checker
	ChecksNodesDown()
}

// CheckRequest is one check run of one system.
type CheckRequest struct {
	Hosts  map[string]host.Host
	Secret secret.Secret
	Out    io.Writer     // the report, and the drills' progress
	Wait   time.Duration // retry the checks until they pass, this long
	Drills []string      // the drills asked for, by name, in the order to run them
	// Unreachable are the nodes not connected to, with why; only ever set
	// for a PartialChecker (Hosts then lacks them).
	Unreachable map[string]error
}

var drivers = struct {
	sync.Mutex
	m map[string]Driver
}{m: map[string]Driver{}}

// RegisterDriver makes d available as name. It panics on a second
// registration of the same name (a bug of the program, found at start).
func RegisterDriver(name string, d Driver) {
	drivers.Lock()
	defer drivers.Unlock()
	if _, dup := drivers.m[name]; dup {
		panic("engine: driver " + name + " registered twice")
	}
	drivers.m[name] = d
}

// Open opens cl with its driver, or as plain resources when it names none.
func Open(cl *config.Cluster) (System, error) {
	if cl.Driver == "" {
		return plain{cl}, nil
	}
	drivers.Lock()
	d, ok := drivers.m[cl.Driver]
	drivers.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s %s: no driver %q in this hastack", cl.Field, cl.Name, cl.Driver)
	}
	sys, err := d.Open(cl)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", cl.Field, cl.Name, err)
	}
	return sys, nil
}

// plain is a system with no driver: its value is its stack.
type plain struct{ cl *config.Cluster }

func (p plain) Stack(*cue.Context, map[string]any) (cue.Value, error) {
	if !p.cl.Value.LookupPath(cue.ParsePath("phases")).Exists() {
		return cue.Value{}, fmt.Errorf("it names no driver this hastack has, and lists no phases of its own: nothing to render")
	}
	return p.cl.Value, nil
}
func (plain) Guess() map[string]any                          { return nil }
func (plain) Needs(NodeSpec) modules.Needs                   { return modules.Needs{} }
func (plain) Observe(map[string]*Facts) (Observation, error) { return Observation{}, nil }
func (plain) Rollout(*Plan, map[string]host.Host, secret.Secret) Rollout {
	return nil
}
