package engine

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"golang.org/x/crypto/scrypt"

	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// FormatVersion is the version of the JSON plan (docs/plan.md).
const FormatVersion = "1"

// Plan is one system's changes. It holds no secret: a file's diff shows
// secret.Shown where the password stands, and fingerprints are keyed with
// a key derived from the password and the plan's salt (FingerprintKey).
type Plan struct {
	Cluster string `json:"cluster"`
	// Live is the driver's observation the plan was made for; its fields
	// are inlined in the JSON between cluster and phases.
	Live   json.RawMessage `json:"-"`
	Phases []Phase         `json:"phases"`
	Nodes  []NodePlan      `json:"nodes"`

	// Summary and Notes are the header of the text plan.
	Summary string   `json:"-"`
	Notes   []string `json:"-"`

	system System        // for apply's rollout hooks
	secret secret.Secret // likewise
}

// planJSON is Plan without its methods, for MarshalJSON.
type planJSON Plan

// MarshalJSON writes Live's fields inline: {"cluster", <Live>, "phases", "nodes"}.
func (p Plan) MarshalJSON() ([]byte, error) {
	cl, err := json.Marshal(p.Cluster)
	if err != nil {
		return nil, err
	}
	rest, err := json.Marshal(struct {
		Phases []Phase    `json:"phases"`
		Nodes  []NodePlan `json:"nodes"`
	}{p.Phases, p.Nodes})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"cluster":`)
	b.Write(cl)
	if live := bytes.TrimSpace(p.Live); len(live) > 2 && live[0] == '{' {
		b.WriteByte(',')
		b.Write(live[1 : len(live)-1])
	}
	b.WriteByte(',')
	b.Write(rest[1:])
	return b.Bytes(), nil
}

// UnmarshalJSON reads what MarshalJSON wrote: every field that is not the
// plan's own is the driver's Live, kept in its order.
func (p *Plan) UnmarshalJSON(data []byte) error {
	var pj planJSON
	if err := json.Unmarshal(data, &pj); err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(data))
	if _, err := d.Token(); err != nil { // {
		return err
	}
	var live bytes.Buffer
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return err
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return err
		}
		switch k, _ := t.(string); k {
		case "cluster", "phases", "nodes":
		default:
			if live.Len() > 0 {
				live.WriteByte(',')
			}
			kb, _ := json.Marshal(k)
			live.Write(kb)
			live.WriteByte(':')
			live.Write(v)
		}
	}
	*p = Plan(pj)
	if live.Len() > 0 {
		p.Live = json.RawMessage("{" + live.String() + "}")
	}
	return nil
}

// NodePlan is one node's changes, in apply order.
type NodePlan struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// Fingerprint covers what was rendered for the node, the changes
	// planned for it and its state as the driver sees it: a saved plan is refused once
	// applying it would do something else than it shows.
	Fingerprint string            `json:"fingerprint"`
	Changes     []*ResourceChange `json:"changes"`
}

// ResourceChange is one resource that changes.
type ResourceChange struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Phase int    `json:"phase"`
	*modules.Change
}

// Counts sums a plan for its summary line.
type Counts struct {
	Nodes, Create, Update, Delete, Run, Unpredictable, Services int
}

// Add counts c's changes.
func (c *Counts) Add(p *Plan) {
	c.Nodes += len(p.Nodes)
	for _, n := range p.Nodes {
		for _, ch := range n.Changes {
			switch ch.Action {
			case modules.Create:
				c.Create++
			case modules.Update:
				c.Update++
			case modules.Delete:
				c.Delete++
			case modules.Run:
				c.Run++
				if ch.Unpredictable {
					c.Unpredictable++
				}
			default:
				c.Services++
			}
		}
	}
}

// Empty reports whether nothing changes.
func (c Counts) Empty() bool { return c.Create+c.Update+c.Delete+c.Run+c.Services == 0 }

// Diff compares the rendered state with the facts of every node, for the
// live state obs. fpKey keys the nodes' fingerprints (see FingerprintKey);
// nil leaves them out.
func Diff(r *Rendered, sys System, obs Observation, facts map[string]*Facts, sec secret.Secret, fpKey []byte) (*Plan, error) {
	plan := &Plan{Cluster: r.Cluster.Name, Live: obs.Live, Phases: r.Phases, Summary: obs.Summary, Notes: obs.Notes,
		system: sys, secret: sec}
	for _, n := range r.Nodes {
		f := facts[n.Name]
		if f == nil {
			return nil, fmt.Errorf("node %s: no facts", n.Name)
		}
		np := NodePlan{Name: n.Name, Address: fmt.Sprintf("%s:%d", n.SSH.Host, n.SSH.Port)}
		changed := map[string]bool{}
		byID := map[string]*ResourceChange{}
		env := &modules.Env{Secret: sec, Stopped: map[string]bool{}, Node: n.Name}
		diff := func(res modules.Resource) error {
			m, err := modules.Lookup(res.Kind)
			if err != nil {
				return err
			}
			env.Triggered = nil
			for _, w := range res.Watch {
				if changed[w] {
					env.Triggered = append(env.Triggered, w)
				}
			}
			c, err := m.Diff(&res, &modules.Fact{Out: f.Resources[res.ID], Node: f.Shared}, env)
			if err != nil {
				return fmt.Errorf("node %s: %s: %w", n.Name, res.ID, err)
			}
			if c != nil {
				byID[res.ID] = &ResourceChange{ID: res.ID, Kind: res.Kind, Phase: res.Phase, Change: c}
				changed[res.ID] = !c.Live
			}
			return nil
		}
		// Resources that watch others are diffed after everything else, so
		// they know what changes on the node.
		for _, res := range n.Resources {
			if len(res.Watch) == 0 {
				if err := diff(res); err != nil {
					return nil, err
				}
			}
		}
		for _, res := range n.Resources {
			if len(res.Watch) > 0 {
				if err := diff(res); err != nil {
					return nil, err
				}
			}
		}
		for _, res := range n.Resources {
			if c := byID[res.ID]; c != nil {
				np.Changes = append(np.Changes, c)
			}
		}
		if fpKey != nil {
			np.Fingerprint = fingerprint(n, obs.NodeState[n.Name], np.Changes, fpKey)
		}
		plan.Nodes = append(plan.Nodes, np)
	}
	return plan, nil
}

// fingerprint covers what was rendered for the node, what apply will do
// there (the changes, as shown) and the node's state as the driver sees it
// (its role, say). It does not cover the raw facts: services rewrite
// lines hastack leaves alone and peers discover each other for seconds
// after a start, so a plan saved right after an apply was refused as stale
// although applying it would do exactly what it showed.
func fingerprint(n NodeSpec, state string, changes []*ResourceChange, key []byte) string {
	m := hmac.New(sha256.New, key)
	for _, v := range []any{n, changes, state} {
		b, _ := json.Marshal(v)
		m.Write(b)
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// FingerprintKey derives the key of a plan's fingerprints from the cluster
// password and the plan's random salt. scrypt makes each guess of the
// password against a saved plan file cost tens of milliseconds: the
// fingerprints cover data that is mostly in the file itself.
func FingerprintKey(sec secret.Secret, salt []byte) []byte {
	// The named secrets key it too: a stack may have no password.
	pw := sec.Value()
	for _, n := range sec.Names() {
		v, _ := sec.Named(n)
		pw += "\x00" + n + "\x00" + v.Value()
	}
	k, err := scrypt.Key([]byte(pw), append([]byte("hastack-plan:"), salt...), 1<<14, 8, 1, 32)
	if err != nil {
		panic(err) // only for invalid parameters, which are constants here
	}
	return k
}
