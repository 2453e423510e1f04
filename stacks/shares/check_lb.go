package shares

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/stacks/lb"
)

// HealthCheck is loadBalancer.healthCheck: the load balancer's per-node
// probe of the web application.
type HealthCheck struct {
	Kind    string `json:"kind"` // "tcp" or "http"
	Port    int    `json:"port"`
	Path    string `json:"path"`
	InterMS int    `json:"interMilliseconds"`
	Fall    int    `json:"fall"`
}

// Detection is how long the load balancer takes at most to stop sending
// to a dead node: inter × fall (stacks/lb's #FrontendHAProxy).
func (hc HealthCheck) Detection() time.Duration {
	return time.Duration(hc.InterMS*hc.Fall) * time.Millisecond
}

// healthCheck reads loadBalancer.healthCheck from the tier's config.
func (t *Tier) healthCheck() (HealthCheck, error) {
	var hc HealthCheck
	err := t.Value.LookupPath(cue.ParsePath("loadBalancer.healthCheck")).Decode(&hc)
	return hc, err
}

// checkBalancerProbe sends the load balancer's health check to each app
// node: both must pass, or the load balancer takes one out. The stack
// renders no load balancer yet (docs/shares.md), so there is no balancer
// whose own view check could read; the probe goes through the node's own
// SSH connection (direct-tcpip to its address), the address and port the
// balancer would probe.
func (s *system) checkBalancerProbe(ctx context.Context, req engine.CheckRequest, b interface{ WriteString(string) (int, error) }) (problems []string) {
	hc, err := s.t.healthCheck()
	if err != nil {
		return []string{"loadBalancer.healthCheck: " + err.Error()}
	}
	for _, n := range s.t.App {
		d, ok := req.Hosts[n.Name].(host.Dialer)
		if !ok {
			problems = append(problems, n.Name+": not reached, or its connection opens no TCP connection (load balancer health check)")
			continue
		}
		what, err := Probe(ctx, d, n.IP, hc)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: fails the load balancer's health check (%s): %v", n.Name, what, err))
			continue
		}
		b.WriteString(fmt.Sprintf("%s: passes the load balancer's health check (%s)\n", n.Name, what))
	}
	return problems
}

// Probe runs hc against ip through d: "tcp" a connect to the port, "http"
// a GET of the path over TLS (the port carries HTTPS) answered 200, as
// HAProxy's check expects.
// what describes the probe for messages.
func Probe(ctx context.Context, d host.Dialer, ip string, hc HealthCheck) (what string, err error) {
	addr := net.JoinHostPort(ip, strconv.Itoa(hc.Port))
	what = "tcp " + addr
	if hc.Kind == "http" {
		what = "GET https://" + addr + hc.Path
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := d.DialTCP(ctx, addr)
	if err != nil {
		return what, err
	}
	defer c.Close()
	if hc.Kind != "http" {
		return what, nil
	}
	_, err = HTTPSGet(ctx, c, ip, hc.Path)
	return what, err
}

// HTTPSGet sends one GET of path over TLS on c and returns the status
// line's code, failing unless it is 200 (HAProxy's http check). The certificate is not
// verified: the probe asks whether the node answers, as a load balancer's
// health check does (the nodes' certificates are their own self-signed
// ones until the load balancer terminates TLS).
func HTTPSGet(ctx context.Context, c net.Conn, hostname, path string) (int, error) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: hostname})
	req, _ := http.NewRequest("GET", "https://"+hostname+path, nil)
	req.Close = true
	if err := req.Write(tc); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 { // HAProxy's http check expects 200
		return resp.StatusCode, fmt.Errorf("answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// lbView is what check reads on one load balancer: its addresses, its
// units' states (in lbUnits' order) and HAProxy's `show stat`.
type lbView struct {
	Addrs, Active, Stats string
	Err                  error
}

// lbUnits are the units each load balancer runs: nginx carries type 1's
// transfers.
func (t *Tier) lbUnits() []string {
	if t.Architecture == "type1" {
		return []string{"keepalived", "haproxy", "nginx"}
	}
	return []string{"keepalived", "haproxy"}
}

// lbScript prints a load balancer's view, sections split by @@ lines.
func (t *Tier) lbScript() string {
	return "ip -4 -o addr show 2>&1; echo @@active; systemctl is-active " + strings.Join(t.lbUnits(), " ") + " 2>&1; echo @@stats\n" + lb.ShowStatScript()
}

// LBProblems judges the load balancers' views: exactly one holds the
// VIP, each runs its units, and HAProxy's https backend has both app
// nodes UP (HAProxy's own health check, not a probe of ours).
func (t *Tier) LBProblems(views map[string]lbView, b interface{ WriteString(string) (int, error) }) (problems []string) {
	var holders []string
	for _, n := range t.LoadBalancers {
		v := views[n.Name]
		if v.Err != nil {
			problems = append(problems, fmt.Sprintf("load balancer %s: %v", n.Name, v.Err))
			continue
		}
		if strings.Contains(v.Addrs, " "+t.VIP+"/") {
			holders = append(holders, n.Name)
		}
		units, st := t.lbUnits(), strings.Fields(v.Active)
		ok := len(st) == len(units)
		for _, s := range st {
			ok = ok && s == "active"
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("load balancer %s: %s: %s", n.Name, strings.Join(units, ", "), strings.Join(st, ", ")))
		}
		states := lb.BackendStates(v.Stats, "https")
		var up, notUp []string
		for _, a := range t.App {
			if states[a.Name] == "UP" {
				up = append(up, a.Name)
			} else {
				notUp = append(notUp, a.Name+" "+cmp.Or(states[a.Name], "unknown"))
			}
		}
		if len(notUp) > 0 {
			problems = append(problems, fmt.Sprintf("load balancer %s: HAProxy's view: %s not UP in backend https", n.Name, strings.Join(notUp, ", ")))
		} else {
			b.WriteString(fmt.Sprintf("load balancer %s: %s active; HAProxy's view: %s UP\n", n.Name, strings.Join(units, ", "), strings.Join(up, ", ")))
		}
	}
	switch len(holders) {
	case 1:
		b.WriteString(fmt.Sprintf("VIP %s on %s\n", t.VIP, holders[0]))
	case 0:
		problems = append(problems, fmt.Sprintf("no load balancer holds the VIP %s", t.VIP))
	default:
		problems = append(problems, fmt.Sprintf("the VIP %s is on %s at once: the load balancers do not hear each other", t.VIP, strings.Join(holders, " and ")))
	}
	return problems
}

// checkLoadBalancers reads each load balancer's view over SSH.
func (s *system) checkLoadBalancers(ctx context.Context, req engine.CheckRequest, b interface{ WriteString(string) (int, error) }) []string {
	views := map[string]lbView{}
	for _, n := range s.t.LoadBalancers {
		h := req.Hosts[n.Name]
		if h == nil {
			views[n.Name] = lbView{Err: errors.New("not reached: " + unreached(req, n.Name))}
			continue
		}
		res, err := h.Run(ctx, s.t.lbScript(), nil)
		if err != nil {
			views[n.Name] = lbView{Err: err}
			continue
		}
		out := string(res.Stdout)
		addrs, rest, _ := strings.Cut(out, "@@active\n")
		active, stats, _ := strings.Cut(rest, "@@stats\n")
		views[n.Name] = lbView{Addrs: addrs, Active: active, Stats: stats}
	}
	return s.t.LBProblems(views, b)
}
