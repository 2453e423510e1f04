package check

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// HealthWait runs Health until it passes or wait has passed, and returns the
// last report. A cluster just applied needs a few seconds for its Sentinels
// to discover each other.
func (c *Checker) HealthWait(ctx context.Context, wait time.Duration) Report {
	deadline := time.Now().Add(wait)
	for {
		r := c.Health(ctx)
		if r.OK() || time.Now().After(deadline) || ctx.Err() != nil {
			return r
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ErrDebugDisabled is returned when the primary refuses DEBUG.
var ErrDebugDisabled = errors.New(`the primary's Redis refuses DEBUG (enable-debug-command is off). The drill pauses the primary with DEBUG SLEEP (seed 003 step 12): set redis: debugCommand: "yes" in the cluster's config and run hastack apply, run the drill, then remove debugCommand and apply again`)

// Drill is what the failover drill measured.
type Drill struct {
	OldPrimary, NewPrimary string
	Pause                  time.Duration // how long DEBUG SLEEP paused the old primary
	NoPrimary              time.Duration // from the pause to a promoted replica saying role:master
	Rejoin                 time.Duration // from the promotion to the old primary replicating, link up
}

// Failover runs the drill of seed 003 step 12 on a healthy cluster: pause
// the primary with DEBUG SLEEP, watch from another node's Sentinel until a
// replica is promoted, then wait for the old primary to come back as a
// replica. The report ends with the health checks, retried until the
// cluster settles (at most settle).
func (c *Checker) Failover(ctx context.Context, settle time.Duration) (Drill, Report, error) {
	cl := c.Cluster
	var d Drill
	before := c.Health(ctx)
	if !before.OK() {
		return d, before, fmt.Errorf("the cluster is not healthy before the drill (%s): no failover was started", strings.Join(before.Failed(), ", "))
	}
	d.OldPrimary = c.primaryOf(before)
	pip := c.ipOf(d.OldPrimary)
	watcher := ""
	for _, n := range cl.Nodes {
		if n.Name != d.OldPrimary {
			watcher = n.Name
			break
		}
	}
	if watcher == "" {
		return d, before, errors.New("the drill needs at least two nodes")
	}

	// DEBUG SLEEP 0 tells whether DEBUG is allowed without pausing anything.
	b := newBoundary()
	out, err := c.run(ctx, d.OldPrimary, debugProbeScript(b, pip, cl.RedisPort))
	if err != nil {
		return d, before, fmt.Errorf("%s: %w", d.OldPrimary, err)
	}
	if s := parseSections(out, b)["debug"]; s.failure() != "" {
		if strings.Contains(s.body, "DEBUG command not allowed") {
			return d, before, ErrDebugDisabled
		}
		return d, before, fmt.Errorf("%s: DEBUG SLEEP 0: %s", d.OldPrimary, s.failure())
	}

	// Pause a few seconds longer than Sentinel needs to fail over.
	secs := (cl.DownAfterMs+cl.FailoverTimeoutMs+999)/1000 + 3
	d.Pause = time.Duration(secs) * time.Second
	c.logf("drill: pausing the primary %s (%s:%d) with DEBUG SLEEP %d (down-after %d ms, failover-timeout %d ms); watching from %s",
		d.OldPrimary, pip, cl.RedisPort, secs, cl.DownAfterMs, cl.FailoverTimeoutMs, watcher)
	slept := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := c.run(ctx, d.OldPrimary, debugSleepScript(b, pip, cl.RedisPort, secs))
		slept <- err
	}()
	newIP, err := c.watchPromotion(ctx, watcher, pip, d.Pause+5*time.Second)
	d.NoPrimary = time.Since(start)
	// After the pause the report before the drill is stale: report the
	// cluster as it is now.
	if err != nil {
		<-slept
		return d, c.Health(ctx), err
	}
	promoted := time.Now()
	d.NewPrimary = c.nodeByIP(newIP)
	c.logf("drill: %s was promoted; the cluster had no primary for %.3fs", d.NewPrimary, d.NoPrimary.Seconds())
	if err := <-slept; err != nil {
		return d, c.Health(ctx), fmt.Errorf("%s: DEBUG SLEEP: %w", d.OldPrimary, err)
	}
	finalIP, err := c.waitRejoin(ctx, d.OldPrimary, watcher, pip, 60*time.Second)
	if err != nil {
		return d, c.Health(ctx), err
	}
	d.Rejoin = time.Since(promoted)
	if finalIP != newIP {
		// Sentinel retries a failover whose promotion it did not see
		// confirmed within failover-timeout; the cluster follows the last.
		d.NewPrimary = c.nodeByIP(finalIP)
		c.logf("drill: the Sentinels then moved the primary to %s (a retried failover)", d.NewPrimary)
	}
	c.logf("drill: %s rejoined as a replica of %s, link up, %.3fs after the promotion", d.OldPrimary, d.NewPrimary, d.Rejoin.Seconds())
	after := c.HealthWait(ctx, settle)
	after = append(after, Result{Check: "failover", OK: true, Detail: fmt.Sprintf("%s promoted after %.3fs without a primary; %s rejoined as a replica",
		d.NewPrimary, d.NoPrimary.Seconds(), d.OldPrimary)})
	return d, after, nil
}

// debugProbeScript asks, with DEBUG SLEEP 0, whether the Redis at ip
// allows DEBUG, without pausing anything.
func debugProbeScript(b, ip string, port int) string {
	return header(b) + fmt.Sprintf("echo '%s debug'\nq -h %s -p %d DEBUG SLEEP 0\n", b, ip, port)
}

// debugSleepScript pauses the Redis at ip for secs seconds. redis-cli's own
// 5 s limit (q's) must not cut the pause short.
func debugSleepScript(b, ip string, port, secs int) string {
	return header(b) + fmt.Sprintf("timeout %d \"$cli\" --no-auth-warning -h %s -p %d DEBUG SLEEP %d </dev/null >/dev/null 2>&1\n", secs+10, ip, port, secs)
}

// primaryOf finds the node whose Redis a passing "redis" result found to
// be the primary.
func (c *Checker) primaryOf(r Report) string {
	for _, x := range r {
		if x.Check == "redis" && x.OK && x.role == "master" {
			return x.Node
		}
	}
	return ""
}

// watchPromotion polls, on watcher, its Sentinel until it names a primary
// other than oldIP whose Redis says role:master. The loop runs on the node,
// so the controller's round trips do not blur the measure.
func (c *Checker) watchPromotion(ctx context.Context, watcher, oldIP string, limit time.Duration) (string, error) {
	cl := c.Cluster
	b := newBoundary()
	script := header(b) + fmt.Sprintf(`end=$(($(date +%%s) + %d))
while [ "$(date +%%s)" -lt "$end" ]; do
  set -- $(timeout 2 "$cli" --no-auth-warning -h %s -p %d SENTINEL get-master-addr-by-name %s 2>/dev/null </dev/null)
  if [ $# -eq 2 ] && [ "$1" != %s ]; then
    if timeout 2 "$cli" --no-auth-warning -h "$1" -p "$2" INFO replication 2>/dev/null </dev/null | tr -d '\r' | grep -qx role:master; then
      echo "promoted $1"; exit 0
    fi
  fi
  sleep 0.02
done
echo timeout
`, int(limit.Seconds())+1, c.ipOf(watcher), cl.SentinelPort, cl.PrimarySet, oldIP)
	out, err := c.run(ctx, watcher, script)
	if err != nil {
		return "", fmt.Errorf("%s: watching the Sentinel: %w", watcher, err)
	}
	f := strings.Fields(string(out))
	if len(f) == 2 && f[0] == "promoted" {
		return f[1], nil
	}
	return "", fmt.Errorf("no replica was promoted within %s of pausing the primary (seen from %s's Sentinel)", limit, watcher)
}

// waitRejoin polls, on the old primary's node, until its Redis is a
// replica, link up, of the primary watcher's Sentinel names now (not
// oldIP), and returns that primary's IP. It follows the Sentinels rather
// than the first promotion: a failover Sentinel retried is still a
// failover.
func (c *Checker) waitRejoin(ctx context.Context, node, watcher, oldIP string, limit time.Duration) (string, error) {
	cl := c.Cluster
	b := newBoundary()
	script := header(b) + fmt.Sprintf(`end=$(($(date +%%s) + %d))
while [ "$(date +%%s)" -lt "$end" ]; do
  set -- $(timeout 2 "$cli" --no-auth-warning -h %s -p %d SENTINEL get-master-addr-by-name %s 2>/dev/null </dev/null)
  i=$(timeout 2 "$cli" --no-auth-warning -h %s -p %d INFO replication 2>/dev/null </dev/null | tr -d '\r')
  if [ $# -eq 2 ] && [ "$1" != %s ] && echo "$i" | grep -qx role:slave && echo "$i" | grep -qx "master_host:$1" && echo "$i" | grep -qx master_link_status:up; then
    echo "rejoined $1"; exit 0
  fi
  sleep 0.1
done
echo "Sentinel on %s names ${1:-none};" $(echo "$i" | grep -E '^(role|master_host|master_link_status):')
`, int(limit.Seconds()), c.ipOf(watcher), cl.SentinelPort, cl.PrimarySet, c.ipOf(node), cl.RedisPort, oldIP, watcher)
	out, err := c.run(ctx, node, script)
	if err != nil {
		return "", fmt.Errorf("%s: waiting for it to rejoin: %w", node, err)
	}
	if f := strings.Fields(string(out)); len(f) == 2 && f[0] == "rejoined" {
		return f[1], nil
	}
	return "", fmt.Errorf("%s did not rejoin as a replica of the primary the Sentinels name, with its link up, within %s (last seen: %s)", node, limit, strings.TrimSpace(string(out)))
}
