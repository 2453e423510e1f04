package check

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/stacks/hsts"
)

func init() { hsts.RegisterCheck(run) }

// Drills are the drills this stack's check runs, by -drill name.
var Drills = []string{"replication", "failover", "bearer"}

// run is hastack check on one cluster: the health checks (retried for
// req.Wait), then the drills asked for, replication first; the failover
// drill ends with the health checks made after it.
func run(ctx context.Context, cl *hsts.Cluster, req engine.CheckRequest) bool {
	c := &Checker{Cluster: cl, Hosts: req.Hosts, Secret: req.Secret, Log: req.Out}
	fmt.Fprintf(req.Out, "Cluster %s: %d nodes, primary set %s\n", cl.Name, len(cl.Nodes), cl.PrimarySet)
	start := time.Now()
	r := c.HealthWait(ctx, req.Wait)
	var drills Report
	for _, d := range req.Drills {
		if !slices.Contains(Drills, d) {
			drills = append(drills, Result{Check: "drill " + d, Detail: "the HSTS stack has no such drill (it has " + strings.Join(Drills, ", ") + ")"})
		}
	}
	if r.OK() && slices.Contains(req.Drills, "replication") {
		drills = append(drills, c.Replication(ctx)...)
	}
	if r.OK() && slices.Contains(req.Drills, "failover") && (len(drills) == 0 || drills.OK()) {
		d, after, err := c.Failover(ctx, 30*time.Second)
		r = after
		if err != nil {
			r = append(r, Result{Node: d.OldPrimary, Check: "failover", Detail: err.Error()})
		}
	}
	if r.OK() && slices.Contains(req.Drills, "bearer") && (len(drills) == 0 || drills.OK()) {
		drills = append(drills, c.BearerDrill(ctx)...) // bearer.go
	}
	r = append(r, drills...)
	r = append(r, c.FrontendWait(ctx, req.Wait-time.Since(start))...) // frontend.go
	r.Write(req.Out)
	return r.OK()
}
