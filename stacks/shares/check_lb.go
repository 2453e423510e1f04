package shares

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/internal/host"
)

// HealthCheck is loadBalancer.healthCheck: the load balancer's per-node
// probe of the web application.
type HealthCheck struct {
	Kind string `json:"kind"` // "tcp" or "http"
	Port int    `json:"port"`
	Path string `json:"path"`
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
// a GET of the path over TLS (the port carries HTTPS) answered 2xx or 3xx.
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
// line's code, failing unless it is 2xx or 3xx. The certificate is not
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
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return resp.StatusCode, fmt.Errorf("answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}
