package shares

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/modules"
)

// Check verifies the running tier (hastack check): ACM's status names
// exactly one node, that node runs every active-only unit, the other runs
// none, and both run the active/active units. Retried until req.Wait.
// Not yet: the load balancer's view and type 2's DNS rotation.
func (s *system) Check(ctx context.Context, req engine.CheckRequest) bool {
	deadline := time.Now().Add(req.Wait)
	for {
		problems, report := s.checkOnce(ctx, req)
		if len(problems) == 0 || time.Now().After(deadline) {
			fmt.Fprint(req.Out, report)
			for _, p := range problems {
				fmt.Fprintf(req.Out, "FAIL %s\n", p)
			}
			if len(problems) == 0 {
				fmt.Fprintf(req.Out, "webtier %s: OK\n", s.t.Name)
			}
			return len(problems) == 0
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
}

func (s *system) checkOnce(ctx context.Context, req engine.CheckRequest) (problems []string, report string) {
	units := append(slices.Clone(BothNodes), ActiveOnly...)
	var b strings.Builder
	actives := map[string]bool{}
	running := map[string][]string{}
	for _, n := range s.t.Nodes {
		h := req.Hosts[n.Name]
		if h == nil {
			problems = append(problems, n.Name+": not reached")
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
	if len(actives) != 1 {
		problems = append(problems, fmt.Sprintf("ACM's status names %d active nodes as read from the nodes, want exactly one", len(actives)))
		return problems, b.String()
	}
	var active string
	for a := range actives {
		active = a
	}
	fmt.Fprintf(&b, "active node (ACM): %s\n", active)
	for _, n := range s.t.Nodes {
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
	return problems, b.String()
}
