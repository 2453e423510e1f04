// Package massstore is the driver of the MassStore stack (stack.cue beside
// it, seed 004). The stack renders in CUE alone; the driver adds what CUE
// cannot: `hastack check` (every process instance active and healthy,
// Galera's cluster size and Primary status on every server, the queue
// draining) and, in the plan, what an accepted split-brain risk costs.
package massstore

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// Name is the driver's registered name (stack.cue's driver).
const Name = "massstore"

func init() { engine.RegisterDriver(Name, driver{}) }

type driver struct{}

// Stack is one MassStore system, decoded. Field meanings: schema/redundancy.
type Stack struct {
	*config.Cluster
	Servers   []string
	Witness   string            // "" when there is none
	IPs       map[string]string // node name to address (servers and witness)
	Processes map[string]Process
	AcceptSBR bool
	AppPort   int
	VIP       string // "" when there is none
}

// Process is one process's placement: instance i runs on Placement[i].
type Process struct {
	Placement  []string `json:"placement"`
	Capacity   *float64 `json:"capacity"`
	Throughput *float64 `json:"throughput"`
}

// Decode reads the stack's settings from cl, which Load has checked.
func Decode(cl *config.Cluster) (*Stack, error) {
	var raw struct {
		Servers []struct {
			Name string `json:"name"`
			IP   string `json:"ip"`
		} `json:"servers"`
		Witness *struct {
			Name string `json:"name"`
			IP   string `json:"ip"`
		} `json:"witness"`
		Processes map[string]Process `json:"processes"`
		AcceptSBR bool               `json:"acceptSplitBrainRisk"`
		VIP       string             `json:"vip"`
	}
	for _, f := range []string{"servers", "witness", "processes", "acceptSplitBrainRisk", "vip"} {
		v := cl.Value.LookupPath(cue.ParsePath(f))
		if !v.Exists() {
			continue
		}
		var err error
		switch f {
		case "servers":
			err = v.Decode(&raw.Servers)
		case "witness":
			err = v.Decode(&raw.Witness)
		case "processes":
			err = v.Decode(&raw.Processes)
		case "vip":
			err = v.Decode(&raw.VIP)
		default:
			err = v.Decode(&raw.AcceptSBR)
		}
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %v", f, err)
		}
	}
	port, err := cl.Value.LookupPath(cue.ParsePath("processes.app.health.port")).Int64()
	if err != nil {
		return nil, fmt.Errorf("processes.app.health.port: %v", err)
	}
	s := &Stack{Cluster: cl, Processes: raw.Processes, AcceptSBR: raw.AcceptSBR, AppPort: int(port), IPs: map[string]string{}, VIP: raw.VIP}
	for _, sv := range raw.Servers {
		s.Servers = append(s.Servers, sv.Name)
		s.IPs[sv.Name] = sv.IP
	}
	if raw.Witness != nil {
		s.Witness = raw.Witness.Name
		s.IPs[s.Witness] = raw.Witness.IP
	}
	return s, nil
}

func (driver) Open(cl *config.Cluster) (engine.System, error) {
	s, err := Decode(cl)
	if err != nil {
		return nil, err
	}
	return system{s}, nil
}

type system struct{ s *Stack }

// Stack: the value is the stack (the render is CUE's).
func (sy system) Stack(*cue.Context, map[string]any) (cue.Value, error) { return sy.s.Value, nil }
func (system) Guess() map[string]any                                    { return nil }
func (system) Needs(engine.NodeSpec) modules.Needs                      { return modules.Needs{} }
func (system) Rollout(*engine.Plan, map[string]host.Host, secret.Secret) engine.Rollout {
	return nil
}

// Observe reads nothing live; it says in the plan what an accepted
// split-brain risk costs, each time, since vet has no warnings.
func (sy system) Observe(map[string]*engine.Facts) (engine.Observation, error) {
	var o engine.Observation
	if sy.s.Witness == "" && sy.s.AcceptSBR && len(sy.s.Servers) > 0 {
		o.Notes = append(o.Notes, fmt.Sprintf("acceptSplitBrainRisk: no witness, so %s holds the deciding vote (pc.weight=2): the database stops taking writes whenever %s is gone or cut off, even when the other servers are fine; without %s nothing is written until it returns or someone bootstraps another server by hand", sy.s.Servers[0], sy.s.Servers[0], sy.s.Servers[0]))
	}
	return o, nil
}

// Units lists the process units of server, in a fixed order.
func (s *Stack) Units(server string) []string {
	var us []string
	if on(s.Processes["database"].Placement, server) {
		us = append(us, "massstore-galera")
	}
	if on(s.Processes["app"].Placement, server) {
		us = append(us, "massstore-app")
	}
	for _, kind := range []string{"datamover", "transcode"} {
		for i, at := range s.Processes[kind].Placement {
			if at == server {
				us = append(us, "massstore-"+kind+"-"+strconv.Itoa(i+1))
			}
		}
	}
	return us
}

func on(placement []string, server string) bool {
	for _, p := range placement {
		if p == server {
			return true
		}
	}
	return false
}

// Result is one check of one node.
type Result struct {
	Node, Check string
	OK          bool
	Detail      string
}

// Check is `hastack check`: it retries until every check passes or
// req.Wait has passed, then prints the last round.
func (sy system) Check(ctx context.Context, req engine.CheckRequest) bool {
	if len(req.Drills) > 0 {
		return sy.s.drills(ctx, req)
	}
	deadline := time.Now().Add(req.Wait)
	for {
		rs := sy.s.checkOnce(ctx, req.Hosts)
		if allOK(rs) || time.Now().After(deadline) || ctx.Err() != nil {
			write(req.Out, rs)
			return allOK(rs)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// queueSQL counts the jobs not done and the runs so far.
const queueSQL = "SELECT CONCAT('queue ', (SELECT COUNT(*) FROM massstore.jobs WHERE stage <> 'done'), ' ', (SELECT COUNT(*) FROM massstore.runs))"

const statusSQL = "SELECT CONCAT('wsrep ', LOWER(VARIABLE_NAME), ' ', VARIABLE_VALUE) FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('WSREP_CLUSTER_SIZE', 'WSREP_CLUSTER_STATUS', 'WSREP_LOCAL_STATE_COMMENT')"

const mariadb = "mariadb --defaults-file=/etc/massstore/galera.cnf -N -B -e "

// script is the read-only check of one node: its units' states, the app
// server's health answer, Galera's status and the queue.
func (s *Stack) script(node string) string {
	var b strings.Builder
	units := s.Units(node)
	if node == s.Witness {
		units = []string{"massstore-garbd"}
	}
	for _, u := range units {
		q := modules.Quote(u)
		fmt.Fprintf(&b, "printf 'unit %%s %%s\\n' %s \"$(systemctl is-active %s 2>/dev/null)\"\n", q, q)
	}
	if node == s.Witness {
		return b.String()
	}
	if s.VIP != "" {
		// keepalived adds the VIP as a /32 on the interface (files.cue).
		fmt.Fprintf(&b, "ip -o -4 addr show 2>/dev/null | grep -qF ' inet '%s/ && echo 'vip held'\n", modules.Quote(s.VIP))
	}
	if on(s.Processes["app"].Placement, node) {
		fmt.Fprintf(&b, "printf 'health %%s\\n' \"$(curl -s -o /dev/null -w '%%{http_code}' -m 3 http://127.0.0.1:%d/health)\"\n", s.AppPort)
	}
	b.WriteString(mariadb + modules.Quote(statusSQL) + " 2>/dev/null\n")
	b.WriteString(mariadb + modules.Quote(queueSQL) + " 2>/dev/null\n")
	b.WriteString("exit 0\n")
	return b.String()
}

func (s *Stack) checkOnce(ctx context.Context, hosts map[string]host.Host) []Result {
	var rs []Result
	voters := len(s.Servers)
	if s.Witness != "" {
		voters++
	}
	queue := map[string][2]int{}
	var holders []string // the servers holding the VIP
	nodes := append(append([]string{}, s.Servers...), s.Witness)
	for _, n := range nodes {
		if n == "" {
			continue
		}
		h, ok := hosts[n]
		if !ok {
			rs = append(rs, Result{n, "reach", false, "not connected"})
			continue
		}
		res, err := h.Run(ctx, s.script(n), nil)
		if err != nil || res.Code != 0 {
			rs = append(rs, Result{n, "reach", false, fmt.Sprintf("check script failed: %v %s", err, strings.TrimSpace(string(res.Stderr)))})
			continue
		}
		got := map[string]string{}
		for _, line := range strings.Split(string(res.Stdout), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) == 3 && (f[0] == "unit" || f[0] == "wsrep"):
				got[f[0]+" "+f[1]] = f[2]
			case len(f) == 2 && f[0] == "unit": // is-active printed nothing
				got[f[0]+" "+f[1]] = "unknown"
			case len(f) == 2 && f[0] == "health":
				got["health"] = f[1]
			case len(f) == 2 && f[0] == "vip" && f[1] == "held":
				holders = append(holders, n)
			case len(f) == 3 && f[0] == "queue":
				p, e1 := strconv.Atoi(f[1])
				r, e2 := strconv.Atoi(f[2])
				if e1 == nil && e2 == nil {
					queue[n] = [2]int{p, r}
				}
			}
		}
		units := s.Units(n)
		if n == s.Witness {
			units = []string{"massstore-garbd"}
		}
		for _, u := range units {
			st := got["unit "+u]
			rs = append(rs, Result{n, u, st == "active", st})
		}
		if n == s.Witness {
			continue
		}
		if on(s.Processes["app"].Placement, n) {
			rs = append(rs, Result{n, "app health", got["health"] == "200", "GET /health: " + got["health"]})
		}
		size, status, state := got["wsrep wsrep_cluster_size"], got["wsrep wsrep_cluster_status"], got["wsrep wsrep_local_state_comment"]
		rs = append(rs, Result{n, "galera", size == strconv.Itoa(voters) && status == "Primary" && state == "Synced",
			fmt.Sprintf("cluster size %s (want %d), %s, %s", orNone(size), voters, orNone(status), orNone(state))})
	}
	if s.VIP != "" {
		rs = append(rs, vipResult(s.VIP, holders))
	}
	rs = append(rs, s.draining(ctx, hosts, queue))
	return rs
}

// vipResult: exactly one server holds the VIP (two is a split VRRP).
func vipResult(vip string, holders []string) Result {
	switch len(holders) {
	case 0:
		return Result{"", "vip", false, vip + " held by no server"}
	case 1:
		return Result{"", "vip", true, vip + " held by " + holders[0]}
	}
	return Result{"", "vip", false, vip + " held by " + strings.Join(holders, " and ") + ": more than one"}
}

// draining: no job waiting, or the runs grew while jobs waited.
func (s *Stack) draining(ctx context.Context, hosts map[string]host.Host, queue map[string][2]int) Result {
	for _, n := range s.Servers {
		q, ok := queue[n]
		if !ok {
			continue
		}
		if q[0] == 0 {
			return Result{"", "queue", true, "empty"}
		}
		select {
		case <-ctx.Done():
			return Result{"", "queue", false, ctx.Err().Error()}
		case <-time.After(2 * time.Second):
		}
		res, err := hosts[n].Run(ctx, mariadb+modules.Quote(queueSQL), nil)
		var p, r int
		if err == nil && res.Code == 0 {
			_, err = fmt.Sscanf(strings.TrimSpace(string(res.Stdout)), "queue %d %d", &p, &r)
		}
		if err != nil || res.Code != 0 {
			return Result{n, "queue", false, fmt.Sprintf("reading the queue again: %v", err)}
		}
		return Result{"", "queue", r > q[1], fmt.Sprintf("%d jobs waiting, %d steps done in 2 s", p, r-q[1])}
	}
	return Result{"", "queue", false, "no server's database answered"}
}

func orNone(s string) string {
	if s == "" {
		return "(no answer)"
	}
	return s
}

func allOK(rs []Result) bool {
	for _, r := range rs {
		if !r.OK {
			return false
		}
	}
	return true
}

func write(w io.Writer, rs []Result) {
	width := 4
	for _, r := range rs {
		width = max(width, len(r.Node))
	}
	var failed []string
	for _, r := range rs {
		st, node := "ok  ", r.Node
		if !r.OK {
			st = "FAIL"
			failed = append(failed, strings.TrimPrefix(r.Node+": "+r.Check, ": "))
		}
		if node == "" {
			node = "-"
		}
		fmt.Fprintf(w, "%s  %-*s  %s: %s\n", st, width, node, r.Check, r.Detail)
	}
	if len(failed) == 0 {
		fmt.Fprintf(w, "All %d checks passed.\n", len(rs))
		return
	}
	fmt.Fprintf(w, "%d of %d checks FAILED: %s\n", len(failed), len(rs), strings.Join(failed, ", "))
}
