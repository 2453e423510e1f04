package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// Facts is what one node told us: each resource's probe output, and the
// node's view of the Redis topology.
type Facts struct {
	Node      string
	Resources map[string][]byte // resource ID → probe output
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

// factScript builds the one read-only script that gathers all of a node's
// facts. It is sent on stdin, after the password line, so neither the
// password nor the script shows in a process list.
func factScript(n NodeSpec, cl topoParams, boundary string) (string, error) {
	// The script arrives on stdin (sh -s): every probe reads /dev/null so
	// none can swallow the rest of the script.
	var b strings.Builder
	// The script arrives on stdin, so the password is in no process list.
	b.WriteString(modules.RedisPrelude)
	for _, r := range n.Resources {
		m, err := modules.Lookup(r.Kind)
		if err != nil {
			return "", err
		}
		p, err := m.Probe(&r)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "echo '%s %s'\n{\n%s} 2>/dev/null </dev/null\n", boundary, r.ID, p)
	}
	fmt.Fprintf(&b, "echo '%s @topology'\n{\n%s} </dev/null\n", boundary, topologyProbe(n.IP, cl))
	fmt.Fprintf(&b, "echo '%s @end'\n", boundary)
	return b.String(), nil
}

type topoParams struct {
	RedisPort, SentinelPort int
	PrimarySet              string
}

// topologyProbe asks the node's own Sentinel and Redis. A refused
// password is reported as such: it must never look like a node where
// nothing runs yet.
func topologyProbe(ip string, p topoParams) string {
	return fmt.Sprintf(`state() { case "$1" in *NOAUTH*|*WRONGPASS*|*"AUTH failed"*) echo auth-failed ;; *"Could not connect"*|*"Connection refused"*|"") echo down ;; *) echo error ;; esac; }
s=$(redisq -h %[1]s -p %[2]d SENTINEL get-master-addr-by-name %[3]s)
case "$s" in *NOAUTH*|*WRONGPASS*|*"AUTH failed"*|*"Could not connect"*|*ERR*|*rror*) echo "sentinel $(state "$s")" ;; *) echo "sentinel up $(echo $s)" ;; esac
r=$(redisq -h %[1]s -p %[4]d INFO replication | tr -d '\r')
case "$r" in *role:*) echo "$r" | grep -E '^(role|master_host|master_port|master_link_status):' | sed 's/^/redis /' ;; *) echo "redis $(state "$r")" ;; esac
`, ip, p.SentinelPort, modules.Quote(p.PrimarySet), p.RedisPort)
}

func parseTopology(b []byte) Topology {
	var t Topology
	var mh, mp string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch {
		case f[0] == "sentinel":
			t.SentinelState = f[1]
			t.SentinelUp = f[1] == "up"
			if t.SentinelUp && len(f) == 4 {
				t.SentinelPrimary = f[2] + " " + f[3]
			}
		case f[0] == "redis" && !strings.Contains(f[1], ":"):
			t.RedisState = f[1]
		case f[0] == "redis":
			k, v, _ := strings.Cut(f[1], ":")
			switch k {
			case "role":
				t.RedisUp, t.RedisRole, t.RedisState = true, v, "up"
			case "master_host":
				mh = v
			case "master_port":
				mp = v
			case "master_link_status":
				t.RedisLinkUp = v == "up"
			}
		}
	}
	if mh != "" {
		t.RedisPrimary = mh + " " + mp
	}
	return t
}

// Gather runs every node's fact script, all nodes in parallel, one exec
// each. It returns facts for the nodes that answered and an error per node
// that did not.
func Gather(ctx context.Context, r *Rendered, hosts map[string]host.Host, sec secret.Secret) (map[string]*Facts, map[string]error) {
	tp := topoParams{r.Cluster.RedisPort, r.Cluster.SentinelPort, r.Cluster.PrimarySet}
	var mu sync.Mutex
	facts := map[string]*Facts{}
	errs := map[string]error{}
	var wg sync.WaitGroup
	for _, n := range r.Nodes {
		h := hosts[n.Name]
		if h == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := gatherNode(ctx, n, tp, h, sec)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[n.Name] = err
			} else {
				facts[n.Name] = f
			}
		}()
	}
	wg.Wait()
	return facts, errs
}

func gatherNode(ctx context.Context, n NodeSpec, tp topoParams, h host.Host, sec secret.Secret) (*Facts, error) {
	var rb [12]byte
	rand.Read(rb[:])
	boundary := "@@hastack-fact-" + hex.EncodeToString(rb[:])
	script, err := factScript(n, tp, boundary)
	if err != nil {
		return nil, err
	}
	res, err := h.Run(ctx, "sh -s", bytes.NewReader(secret.Fill([]byte(script), sec)))
	if err != nil {
		return nil, fmt.Errorf("reading facts: %w", err)
	}
	if res.Code != 0 {
		msg := strings.TrimSpace(string(res.Stderr))
		if !sec.IsZero() {
			msg = strings.ReplaceAll(msg, sec.Value(), secret.Shown)
		}
		return nil, fmt.Errorf("reading facts: the fact script exited %d: %s", res.Code, msg)
	}
	f := &Facts{Node: n.Name, Resources: map[string][]byte{}}
	parts := bytes.Split(res.Stdout, []byte(boundary+" "))
	ended := false
	for _, p := range parts[1:] {
		id, body, _ := bytes.Cut(p, []byte("\n"))
		switch string(id) {
		case "@topology":
			f.Topology = parseTopology(body)
		case "@end":
			ended = true
		default:
			f.Resources[string(id)] = body
		}
	}
	if !ended || len(f.Resources) != len(n.Resources) {
		return nil, fmt.Errorf("reading facts: the fact script's output was cut short")
	}
	return f, nil
}
