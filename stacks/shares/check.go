package shares

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/modules"
)

// Check verifies the running tier (hastack check): ACM's status names
// exactly one node, that node runs every active-only unit, the other runs
// none, and both run the active/active units; both pass the load
// balancer's health check (check_lb.go); type 2: every name server
// answers the round-robin set, in rotation, with the config's TTL
// (checkDNS). Retried until req.Wait. Then the drills asked for
// (drill.go), only when the checks pass; an unknown drill is a failure.
func (s *system) Check(ctx context.Context, req engine.CheckRequest) bool {
	deadline := time.Now().Add(req.Wait)
	var problems []string
	var report, active string
	for {
		problems, report, active = s.checkOnce(ctx, req)
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
	fmt.Fprint(req.Out, report)
	for _, d := range req.Drills {
		if !slices.Contains(Drills, d) {
			problems = append(problems, fmt.Sprintf("drill %s: the %s web tier's stack has no such drill (it has %s)", d, s.t.Product, strings.Join(Drills, ", ")))
		}
	}
	if slices.Contains(req.Drills, "failover") {
		if len(problems) > 0 {
			problems = append(problems, "drill failover: not run: the tier is not healthy")
		} else {
			f, err := s.drillFailover(ctx, req, active)
			switch {
			case err != nil:
				problems = append(problems, "drill failover: "+err.Error())
				if f != nil && len(f.Lost) > 0 {
					problems = append(problems, f.lostProblem())
				}
			default:
				problems = append(problems, f.Problems()...)
			}
		}
	}
	for _, p := range problems {
		fmt.Fprintf(req.Out, "FAIL %s\n", p)
	}
	if len(problems) == 0 {
		fmt.Fprintf(req.Out, "webtier %s: OK\n", s.t.Name)
	}
	return len(problems) == 0
}

// ChecksNodesDown makes check report on the tier with a node down (its
// failover case): the node is named not reached, the other and the load
// balancers checked as ever.
func (s *system) ChecksNodesDown() {}

// unreached is why node was not connected to (its error names it).
func unreached(req engine.CheckRequest, node string) string {
	err := cmp.Or(req.Unreachable[node], errors.New("no connection"))
	return strings.TrimPrefix(err.Error(), node+": ")
}

// checkOnce runs the checks once; active is the node ACM's status names
// ("" unless exactly one).
func (s *system) checkOnce(ctx context.Context, req engine.CheckRequest) (problems []string, report, active string) {
	units := append(slices.Clone(BothNodes), ActiveOnly...)
	var b strings.Builder
	actives := map[string]bool{}
	running := map[string][]string{}
	for _, n := range s.t.App {
		h := req.Hosts[n.Name]
		if h == nil {
			problems = append(problems, n.Name+": not reached: "+unreached(req, n.Name))
			continue
		}
		cmd := "cat " + modules.Quote(s.t.StatusFile()) + " 2>/dev/null; echo @@units; systemctl is-active " + strings.Join(units, " ")
		res, err := h.Run(ctx, cmd, nil)
		if err != nil {
			problems = append(problems, n.Name+": "+err.Error())
			continue
		}
		status, states, _ := strings.Cut(string(res.Stdout), "@@units\n")
		if st, err := ParseStatus([]byte(status)); err == nil {
			actives[st.Active] = true
		}
		lines := strings.Fields(states)
		for i, u := range units {
			if i < len(lines) && lines[i] == "active" {
				running[n.Name] = append(running[n.Name], u)
			}
		}
		fmt.Fprintf(&b, "%s runs: %s\n", n.Name, strings.Join(running[n.Name], " "))
	}
	if s.t.DNS != nil {
		problems = append(problems, s.checkDNS(ctx, req, &b)...)
	}
	if len(s.t.LoadBalancers) > 0 {
		problems = append(problems, s.checkLoadBalancers(ctx, req, &b)...)
	} else {
		problems = append(problems, s.checkBalancerProbe(ctx, req, &b)...)
	}
	if len(actives) != 1 {
		problems = append(problems, fmt.Sprintf("ACM's status names %d active nodes as read from the nodes, want exactly one", len(actives)))
		return problems, b.String(), ""
	}
	for a := range actives {
		active = a
	}
	fmt.Fprintf(&b, "active node (ACM): %s\n", active)
	for _, n := range s.t.App {
		if req.Hosts[n.Name] == nil {
			continue // not reached: said above
		}
		for _, u := range BothNodes {
			if !slices.Contains(running[n.Name], u) {
				problems = append(problems, fmt.Sprintf("%s: %s is not running (active/active)", n.Name, u))
			}
		}
		for _, u := range ActiveOnly {
			on := slices.Contains(running[n.Name], u)
			if n.Name == active && !on {
				problems = append(problems, fmt.Sprintf("%s (active): %s is not running", n.Name, u))
			}
			if n.Name != active && on {
				problems = append(problems, fmt.Sprintf("%s (passive): %s runs, but only the active node may run it", n.Name, u))
			}
		}
	}
	return problems, b.String(), active
}

// DNSQueries is how many times check asks each name server.
const DNSQueries = 20

// checkDNS asks each name server for the FQDN DNSQueries times, over one
// TCP connection from the server node itself (SSH direct-tcpip, so no
// program runs there and no port needs opening to the controller), and
// counts which record comes first. With round-robin every record comes
// first in turn; a server without it (or a cache in front) always puts
// the same one first, and every client picks that node. Other clients'
// queries share NSD's rotation counter, so the check asks that each record
// come first at least once, not in strict turn.
func (s *system) checkDNS(ctx context.Context, req engine.CheckRequest, b *strings.Builder) (problems []string) {
	d := s.t.DNS
	want := slices.Sorted(slices.Values(d.Records))
	for _, srv := range d.Servers {
		fail := func(format string, a ...any) {
			problems = append(problems, fmt.Sprintf("name server %s: ", srv.Name)+fmt.Sprintf(format, a...))
		}
		dialer, ok := req.Hosts[srv.Name].(host.Dialer)
		if !ok {
			fail("not reached, or its connection opens no TCP connection")
			continue
		}
		c, err := dialer.DialTCP(ctx, net.JoinHostPort(srv.IP, "53"))
		if err != nil {
			fail("TCP 53: %v", err)
			continue
		}
		first := map[string]int{}
		var ttl uint32
		for i := range DNSQueries {
			a, err := QueryA(c, d.FQDN, uint16(i+1))
			if err != nil {
				fail("%s: %v", d.FQDN, err)
				break
			}
			if got := slices.Sorted(slices.Values(a.Addrs)); !slices.Equal(got, want) {
				fail("%s answers %v, want the round-robin set %v", d.FQDN, got, want)
				break
			}
			first[a.Addrs[0]]++
			ttl = max(ttl, a.TTL)
		}
		c.Close()
		if len(first) == 0 {
			continue
		}
		var counts []string
		for _, r := range d.Records {
			counts = append(counts, fmt.Sprintf("%s %d", r, first[r]))
			if first[r] == 0 {
				fail("%s never came first in %d answers (not rotating: round-robin off, or a cache in front)", r, DNSQueries)
			}
		}
		fmt.Fprintf(b, "name server %s: %s first in %d answers: %s; TTL %d s\n", srv.Name, d.FQDN, DNSQueries, strings.Join(counts, ", "), ttl)
		if int(ttl) != d.TTL {
			fail("TTL %d s, the config says %d s", ttl, d.TTL)
		}
		if int(ttl) > d.MaxTTL {
			fail("TTL %d s is longer than dns.maxTTL %d s", ttl, d.MaxTTL)
		}
	}
	return problems
}
