// Package check verifies a running cluster over SSH only: every node's
// Sentinel and Redis are asked on the node itself (the firewall closes their
// ports to everyone else), and the drills of seed 003 steps 12 (failover)
// and 13 (replication) can be run on demand. Nothing here changes a
// config file.
package check

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/stacks/hsts"
)

// Checker checks one cluster through one open connection per node.
type Checker struct {
	Cluster *hsts.Cluster        // hsts.Decode
	Hosts   map[string]host.Host // node name → connection (engine.ConnectCluster)
	Secret  secret.Secret
	// Log receives progress lines of the drills; nil discards them.
	Log io.Writer
}

// Result is one check on one node.
type Result struct {
	Node   string // "" for a cluster-wide check
	Check  string // sentinel, quorum, sentinel-peers, redis, firewall, haproxy, failover, replication
	OK     bool
	Detail string

	// role is what a "redis" result found the node's Redis to be
	// ("master", "slave"): the drill reads it, never Detail.
	role string
}

// Report is a list of results, in the order they were made.
type Report []Result

// OK tells whether every check passed (and there was at least one).
func (r Report) OK() bool {
	for _, x := range r {
		if !x.OK {
			return false
		}
	}
	return len(r) > 0
}

// Failed lists "node: check" for every failure.
func (r Report) Failed() []string {
	var out []string
	for _, x := range r {
		if !x.OK {
			out = append(out, strings.TrimPrefix(x.Node+": "+x.Check, ": "))
		}
	}
	return out
}

// Write prints one line per result and a summary line.
func (r Report) Write(w io.Writer) {
	width := 4
	for _, x := range r {
		width = max(width, len(x.Node))
	}
	for _, x := range r {
		st := "ok  "
		if !x.OK {
			st = "FAIL"
		}
		node := x.Node
		if node == "" {
			node = "-"
		}
		fmt.Fprintf(w, "%s  %-*s  %s: %s\n", st, width, node, x.Check, x.Detail)
	}
	failed := r.Failed()
	if len(failed) == 0 {
		fmt.Fprintf(w, "All %d checks passed.\n", len(r))
		return
	}
	fmt.Fprintf(w, "%d of %d checks FAILED: %s\n", len(failed), len(r), strings.Join(failed, ", "))
}

func (c *Checker) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, format+"\n", args...)
	}
}

// run sends script to node on stdin with the password filled in.
func (c *Checker) run(ctx context.Context, node, script string) ([]byte, error) {
	h := c.Hosts[node]
	if h == nil {
		return nil, fmt.Errorf("no connection to %s", node)
	}
	res, err := h.Run(ctx, "sh -s", strings.NewReader(string(secret.Fill([]byte(script), c.Secret))))
	if err != nil {
		return nil, err
	}
	return res.Stdout, nil
}

// nodeIP maps private IPs to node names, for messages.
func (c *Checker) nodeByIP(ip string) string {
	for _, n := range c.Cluster.Nodes {
		if n.IP == ip {
			return n.Name
		}
	}
	return ""
}

func (c *Checker) ipOf(node string) string {
	for _, n := range c.Cluster.Nodes {
		if n.Name == node {
			return n.IP
		}
	}
	return ""
}

// Health runs the read-only checks on every node in parallel.
func (c *Checker) Health(ctx context.Context) Report {
	views := make([]view, len(c.Cluster.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Cluster.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := newBoundary()
			out, err := c.run(ctx, n.Name, c.healthScript(n.IP, b))
			views[i] = parseView(n.Name, out, b, err)
		}()
	}
	wg.Wait()
	return c.evaluate(views)
}
