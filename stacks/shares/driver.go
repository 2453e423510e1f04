// Package shares is the driver of the Shares/Console HA stack (stack.cue
// beside it, seed 001): it reads which node Aspera Cluster Manager (ACM)
// calls active from ACM's status file on the shared storage, renders the
// stack for that node, and refuses to plan when an active-only service
// runs on the other node (two mysqld over one data directory).
package shares

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
	"hastack.dev/hastack/stacks/lb"
)

// Name is the driver's registered name.
const Name = "shares"

func init() {
	engine.RegisterDriver(Name, driver{})
	// Every entry of `webtiers` is a shares.#Cluster.
	config.DefaultDriver("webtiers", Name)
}

// ActiveOnly are the units of 001's active/passive services (stack.cue's
// #ActiveOnly): they run on ACM's active node and nowhere else.
var ActiveOnly = []string{"mariadb", "cron", "stats-collector", "shares-background"}

// BothNodes are the units of 001's active/active services.
var BothNodes = []string{"nginx", "asperahttpd", "asperanoded"}

// Tier is one web tier, decoded. Field meanings: schema/shares.
type Tier struct {
	*config.Cluster
	Product      string
	Architecture string
	Active       string // bootstrap choice only
	VIP          string
	ACMDir       string // the acm mount, the same on both nodes (vet)
	RefreshS     int
	ExpiryS      int
	MySQLPort    int
	// App are the two app nodes; Cluster.Nodes holds them, then the
	// name servers and the load balancers (the nodes the engine connects to).
	App []config.Node
	DNS *DNS
	// LoadBalancers are loadBalancer.nodes (stacks/lb): none when the
	// load balancer is not hastack's.
	LoadBalancers []config.Node
}

// DNS is type 2's round-robin set and its name servers.
type DNS struct {
	FQDN    string        `json:"fqdn"`
	Records []string      `json:"records"`
	TTL     int           `json:"ttl"`
	MaxTTL  int           `json:"maxTTL"`
	Servers []config.Node `json:"-"`
}

// Decode reads the tier's settings from cl, which Load has checked.
func Decode(cl *config.Cluster) (*Tier, error) {
	var raw struct {
		Product      string `json:"product"`
		Architecture string `json:"architecture"`
		Active       string `json:"active"`
		VIP          string `json:"vip"`
		Nodes        []struct {
			Mounts struct {
				ACM string `json:"acm"`
			} `json:"mounts"`
		} `json:"nodes"`
		ACM struct {
			Refresh int `json:"refreshSeconds"`
			Expiry  int `json:"expirySeconds"`
		} `json:"acm"`
		MySQL struct {
			Port int `json:"port"`
		} `json:"mysql"`
		DNS *struct {
			DNS
		} `json:"dns"`
	}
	if err := cl.Value.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decoding: %v", err)
	}
	if len(raw.Nodes) != 2 || len(cl.Nodes) < 2 {
		return nil, fmt.Errorf("want two nodes, have %d", len(raw.Nodes))
	}
	t := &Tier{Cluster: cl, Product: raw.Product, Architecture: raw.Architecture, Active: raw.Active,
		VIP: raw.VIP, ACMDir: raw.Nodes[0].Mounts.ACM, RefreshS: raw.ACM.Refresh, ExpiryS: raw.ACM.Expiry,
		MySQLPort: raw.MySQL.Port, App: slices.Clone(cl.Nodes[:2])}
	if raw.DNS != nil && raw.Architecture == "type2" {
		// The name servers are nodes the engine connects to: appended to
		// cl.Nodes once (a tier is decoded more than once), as stacks/hsts
		// does with its load balancers.
		t.DNS = &raw.DNS.DNS
		servers, err := config.DecodeNodes(cl.Value.LookupPath(cue.ParsePath("dns.servers")))
		if err != nil {
			return nil, fmt.Errorf("decoding dns.servers: %v", err)
		}
		t.DNS.Servers = servers
		cl.AddNodes(servers)
	}
	if cl.Value.LookupPath(cue.ParsePath("loadBalancer.nodes")).Exists() {
		lbs, err := lb.Decode(cl, "loadBalancer.nodes")
		if err != nil {
			return nil, err
		}
		t.LoadBalancers = lbs
	}
	return t, nil
}

// isApp says whether name is one of the two app nodes.
func (t *Tier) isApp(name string) bool {
	return slices.ContainsFunc(t.App, func(n config.Node) bool { return n.Name == name })
}

// StatusFile is ACM's status file: "active=NODE" and "updated=UNIX".
func (t *Tier) StatusFile() string { return t.ACMDir + "/status" }

type driver struct{}

func (driver) Open(cl *config.Cluster) (engine.System, error) {
	t, err := Decode(cl)
	if err != nil {
		return nil, err
	}
	return &system{t: t}, nil
}

type system struct{ t *Tier }

// Live is what a plan saves of the tier's state.
type Live struct {
	Active string `json:"active"`
	// Source is "acm" (the status file) or "config" (no status yet).
	Source string `json:"source"`
}

// Guess is the common case: ACM runs and names the configured node.
func (s *system) Guess() map[string]any { return map[string]any{"active": s.t.Active} }

// Needs: ACM's status file and the active-only units' states, on the app
// nodes; a load balancer's addresses (who holds the VIP).
func (s *system) Needs(n engine.NodeSpec) modules.Needs {
	if lb.Is(s.t.LoadBalancers, n.Name) {
		return lb.Needs(s.t.VIP)
	}
	if !s.t.isApp(n.Name) {
		return modules.Needs{}
	}
	return modules.Needs{Files: []string{s.t.StatusFile()}, Units: ActiveOnly}
}

// Status is ACM's status file, parsed.
type Status struct {
	Active  string
	Updated int64
}

// ParseStatus reads "key=value" lines; unknown keys are ignored.
func ParseStatus(b []byte) (Status, error) {
	var st Status
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "active":
			st.Active = v
		case "updated":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return st, fmt.Errorf("updated=%q is not a Unix time", v)
			}
			st.Updated = n
		}
	}
	if st.Active == "" {
		return st, fmt.Errorf("no active= line")
	}
	return st, nil
}

// LiveActive is the node ACM's status names, read from any reached node
// (both see the same shared file); none: the config's bootstrap choice.
func (t *Tier) LiveActive(facts map[string]*engine.Facts) (Live, error) {
	for _, n := range t.App {
		f := facts[n.Name]
		if f == nil || f.Shared == nil {
			continue
		}
		ff := f.Shared.Files[t.StatusFile()]
		if ff == nil {
			continue
		}
		st, err := ParseStatus(ff.Data)
		if err != nil {
			return Live{}, fmt.Errorf("ACM status %s on %s: %v", t.StatusFile(), n.Name, err)
		}
		if !t.hasNode(st.Active) {
			return Live{}, fmt.Errorf("ACM status %s names %q, which is not one of the nodes", t.StatusFile(), st.Active)
		}
		return Live{Active: st.Active, Source: "acm"}, nil
	}
	return Live{Active: t.Active, Source: "config"}, nil
}

func (t *Tier) hasNode(name string) bool { return t.isApp(name) }

// Misplaced lists the active-only units running on a node other than
// active: the placement rule. A second mysqld over the shared data files
// would corrupt them; hastack refuses to plan rather than add to it.
func (t *Tier) Misplaced(active string, facts map[string]*engine.Facts) []string {
	var bad []string
	for _, n := range t.App {
		f := facts[n.Name]
		if n.Name == active || f == nil || f.Shared == nil {
			continue
		}
		for _, u := range ActiveOnly {
			if f.Shared.Units[u].Active == "active" {
				bad = append(bad, u+" on "+n.Name)
			}
		}
	}
	return bad
}

// Observe reads the active node and checks the placement; with load
// balancers, which one holds the VIP.
func (s *system) Observe(facts map[string]*engine.Facts) (engine.Observation, error) {
	live, err := s.t.LiveActive(facts)
	if err != nil {
		return engine.Observation{}, err
	}
	if bad := s.t.Misplaced(live.Active, facts); len(bad) > 0 {
		return engine.Observation{}, fmt.Errorf("active-only services run on the passive node (%s) while ACM's active node is %s: only the active node may run them (a second mysqld over the shared data files); stop them there first", strings.Join(bad, ", "), live.Active)
	}
	in := map[string]any{"active": live.Active}
	if live.Source == "config" {
		in["bootstrap"] = true
	}
	b, _ := json.Marshal(live)
	sum := fmt.Sprintf(" (%s, %s): active %s", s.t.Product, s.t.Architecture, live.Active)
	if live.Source == "acm" {
		sum += " (named by ACM)"
	} else {
		sum += " (bootstrap: no ACM status yet)"
	}
	obs := engine.Observation{Inputs: in, Live: b, Summary: sum}
	// The VIP's holder: live state, shown, never rendered from.
	if len(s.t.LoadBalancers) > 0 {
		lb.ObserveHolder(facts, s.t.VIP, s.t.LoadBalancers, "loadBalancer.vrrp.unicast", &obs)
	}
	return obs, nil
}

// Stale says the active node moved since a saved plan was made.
func (s *system) Stale(saved, fresh json.RawMessage) string {
	var a, b Live
	json.Unmarshal(saved, &a)
	json.Unmarshal(fresh, &b)
	if a.Active != b.Active {
		return fmt.Sprintf("ACM's active node moved from %s to %s", a.Active, b.Active)
	}
	return ""
}

// Rollout: none; the tier's services are placed per node, and ACM, not
// hastack, moves the active role.
func (s *system) Rollout(*engine.Plan, map[string]host.Host, secret.Secret) engine.Rollout {
	return nil
}

// Stack fills the embedded stack with the tier and the inputs.
func (s *system) Stack(ctx *cue.Context, inputs map[string]any) (cue.Value, error) {
	st, err := embedded.Value(ctx)
	if err != nil {
		return cue.Value{}, err
	}
	return st.Unify(ctx.Encode(inputs).FillPath(cue.ParsePath("cluster"), s.t.Value)), nil
}
