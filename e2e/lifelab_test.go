package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"hastack.dev/hastack/internal/lab"
)

// Passwords of issue 5's proofs: the cluster starts with lifePassword; the
// rotation moves it to lifeNewPassword.
const (
	lifePassword    = "life-Old-Passw0rd"
	lifeNewPassword = "life-New-Passw0rd"
)

// lifeLab is a lab, the folder of a hastack config for some of its nodes,
// and the password the cluster uses now. Unlike the issue-4 helpers it
// configures a subset of the lab's nodes (to grow, shrink and replace) and
// changes the secret (to rotate it).
type lifeLab struct {
	t   *testing.T
	lab *lab.Lab
	dir string
	pw  string // the password the cluster uses now
}

func newLifeLab(t *testing.T, n int) *lifeLab {
	start := time.Now()
	l := lab.Start(t, n)
	t.Logf("lab of %d nodes up in %.1fs", n, time.Since(start).Seconds())
	return &lifeLab{t: t, lab: l, dir: t.TempDir(), pw: lifePassword}
}

// names are node names; all lists every node of the lab.
func (c *lifeLab) all() []string {
	var out []string
	for _, n := range c.lab.Nodes {
		out = append(out, n.Name)
	}
	return out
}

func (c *lifeLab) ip(node string) string {
	n, ok := c.lab.Node(node)
	if !ok {
		c.t.Fatalf("no node %s", node)
	}
	return n.IP
}

func (c *lifeLab) name(ip string) string {
	for _, n := range c.lab.Nodes {
		if n.IP == ip {
			return n.Name
		}
	}
	return ip
}

// configure writes the config for nodes (node1 is the bootstrap primary),
// with extra CUE inside the cluster struct. secret, when not empty,
// replaces the generated `secret:` line (e.g. to add previousSecret).
func (c *lifeLab) configure(nodes []string, extra, secret string) {
	c.t.Helper()
	sub := lab.Lab{Name: c.lab.Name}
	for _, name := range nodes {
		n, _ := c.lab.Node(name)
		sub.Nodes = append(sub.Nodes, n)
	}
	if err := sub.WriteConfig(c.dir, extra); err != nil {
		c.t.Fatal(err)
	}
	if secret == "" {
		return
	}
	p := filepath.Join(c.dir, "cluster.cue")
	b, err := os.ReadFile(p)
	if err != nil {
		c.t.Fatal(err)
	}
	const gen = `secret: env: "HASTACK_REDIS_PASSWORD"`
	if !bytes.Contains(b, []byte(gen)) {
		c.t.Fatalf("the lab's config has no %s line:\n%s", gen, b)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte(gen), []byte(secret), 1), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// run runs the CLI (this test binary, see TestMain) on the config, with
// the old password in $HASTACK_REDIS_PASSWORD and the new one in
// $HASTACK_NEW_PASSWORD, and returns its exit code and output.
func (c *lifeLab) run(args ...string) (int, string) {
	c.t.Helper()
	return runHastack(c.t, c.lab.Dir, c.dir, map[string]string{
		"HASTACK_REDIS_PASSWORD": lifePassword, "HASTACK_NEW_PASSWORD": lifeNewPassword}, args...)
}

func (c *lifeLab) must(want int, args ...string) string {
	c.t.Helper()
	code, out := c.run(args...)
	if code != want {
		c.t.Fatalf("hastack %s exited %d, want %d", strings.Join(args, " "), code, want)
	}
	return out
}

// noChanges runs plan -detailed-exitcode and fails unless it is empty.
func (c *lifeLab) noChanges(when string) {
	c.t.Helper()
	code, out := c.run("plan", "-detailed-exitcode")
	if code != 0 || !strings.Contains(out, "No changes.") {
		c.t.Fatalf("%s: plan exited %d, want 0 and \"No changes.\"", when, code)
	}
}

// redisOn runs redis-cli inside node against addr ("ip port") with the
// cluster's password and returns its trimmed output.
func (c *lifeLab) redisOn(node, ip string, port int, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return lifeRedisCLI(ctx, c.lab, node, []string{c.pw}, append([]string{"-h", ip, "-p", fmt.Sprint(port)}, args...)...)
}

// sentinel asks node's own Sentinel; redis asks node's own Redis.
func (c *lifeLab) sentinel(node string, args ...string) (string, error) {
	return c.redisOn(node, c.ip(node), 41415, args...)
}

func (c *lifeLab) redis(node string, args ...string) (string, error) {
	return c.redisOn(node, c.ip(node), 31415, args...)
}

// fields parses redis-cli's one-per-line key/value answer (SENTINEL MASTER).
func lifeFields(out string) map[string]string {
	m := map[string]string{}
	ls := strings.Split(out, "\n")
	for i := 0; i+1 < len(ls); i += 2 {
		m[strings.TrimSpace(ls[i])] = strings.TrimSpace(ls[i+1])
	}
	return m
}

// info parses INFO output.
func lifeInfo(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// primary is the node node's Sentinel names.
func (c *lifeLab) primaryOf(node string) string {
	out, err := c.sentinel(node, "SENTINEL", "get-master-addr-by-name", "myprimary")
	if err != nil {
		return ""
	}
	ip, _, _ := strings.Cut(out, "\n")
	return c.name(ip)
}

// settled says what is not yet in order on a cluster of nodes, or nil:
// every Sentinel names the same primary (not `not`, when set), counts
// len(nodes)-1 other Sentinels and replicas, none of them down, passes
// CKQUORUM; the primary says role:master with len(nodes)-1 replicas online.
func (c *lifeLab) settled(nodes []string, not string) (string, error) {
	want := len(nodes) - 1
	primary := ""
	for _, n := range nodes {
		p := c.primaryOf(n)
		if p == "" || (primary != "" && p != primary) {
			return "", fmt.Errorf("%s's Sentinel names %q, another %q", n, p, primary)
		}
		primary = p
		out, err := c.sentinel(n, "SENTINEL", "MASTER", "myprimary")
		if err != nil {
			return "", fmt.Errorf("%s: SENTINEL MASTER: %v", n, err)
		}
		m := lifeFields(out)
		if m["flags"] != "master" || m["num-other-sentinels"] != fmt.Sprint(want) || m["num-slaves"] != fmt.Sprint(want) {
			return "", fmt.Errorf("%s's Sentinel: flags %s, num-other-sentinels %s, num-slaves %s; want master, %d, %d",
				n, m["flags"], m["num-other-sentinels"], m["num-slaves"], want, want)
		}
		for _, what := range []string{"SENTINELS", "REPLICAS"} {
			out, _ := c.sentinel(n, "SENTINEL", what, "myprimary")
			for _, f := range strings.Split(out, "\n") {
				if strings.Contains(f, "_down") || strings.Contains(f, "disconnected") {
					return "", fmt.Errorf("%s's Sentinel: one of its %s is %s", n, strings.ToLower(what), f)
				}
			}
		}
		if out, _ := c.sentinel(n, "SENTINEL", "CKQUORUM", "myprimary"); !strings.HasPrefix(out, "OK") {
			return "", fmt.Errorf("%s: CKQUORUM: %s", n, out)
		}
	}
	if primary == not {
		return "", fmt.Errorf("the Sentinels still name %s", not)
	}
	out, err := c.redis(primary, "INFO", "replication")
	m := lifeInfo(out)
	if err != nil || m["role"] != "master" || m["connected_slaves"] != fmt.Sprint(want) {
		return "", fmt.Errorf("primary %s: role %s, %s replicas connected: %v", primary, m["role"], m["connected_slaves"], err)
	}
	return primary, nil
}

// waitSettled polls settled for up to a minute and returns the primary.
func (c *lifeLab) waitSettled(nodes []string, not string) string {
	c.t.Helper()
	start := time.Now()
	for {
		p, err := c.settled(nodes, not)
		if err == nil {
			c.t.Logf("cluster %v settled in %.1fs: primary %s, every Sentinel counts %d others and %d replicas, CKQUORUM OK",
				nodes, time.Since(start).Seconds(), p, len(nodes)-1, len(nodes)-1)
			return p
		}
		if time.Since(start) > time.Minute {
			c.t.Fatalf("cluster %v not settled after a minute: %v", nodes, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// runIDs maps "node redis" and "node sentinel" to the server's run_id,
// which changes on every start: equal maps mean nothing restarted.
func (c *lifeLab) runIDs(nodes []string) map[string]string {
	c.t.Helper()
	m := map[string]string{}
	for _, n := range nodes {
		for what, ask := range map[string]func(string, ...string) (string, error){"redis": c.redis, "sentinel": c.sentinel} {
			out, err := ask(n, "INFO", "server")
			id := lifeInfo(out)["run_id"]
			if err != nil || id == "" {
				c.t.Fatalf("%s %s: INFO server: %v %s", n, what, err, out)
			}
			m[n+" "+what] = id
		}
	}
	return m
}

// restarted lists the servers whose run_id differs between two runIDs.
func lifeRestarted(before, after map[string]string) []string {
	var out []string
	for k, v := range before {
		if after[k] != v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// sentinelRuntime returns, per node, the lines Sentinel owns in its file:
// myid, epochs, known-* and the monitor line, sorted.
func (c *lifeLab) sentinelRuntime(nodes []string) map[string]string {
	c.t.Helper()
	m := map[string]string{}
	for _, n := range nodes {
		out, err := c.lab.Exec(c.t.Context(), n, "cat", "/opt/aspera/etc/redis/sentinel_41415.conf")
		if err != nil {
			c.t.Fatal(err)
		}
		var ls []string
		for _, l := range strings.Split(string(out), "\n") {
			for _, p := range []string{"sentinel myid", "sentinel config-epoch", "sentinel leader-epoch", "sentinel current-epoch", "sentinel known-", "sentinel monitor"} {
				if strings.HasPrefix(l, p) {
					ls = append(ls, l)
				}
			}
		}
		sort.Strings(ls)
		m[n] = strings.Join(ls, "\n")
	}
	return m
}

// exec runs argv inside node and fails the test on error.
func (c *lifeLab) exec(node string, argv ...string) string {
	c.t.Helper()
	out, err := c.lab.Exec(c.t.Context(), node, argv...)
	if err != nil {
		c.t.Fatalf("%s: %v", node, err)
	}
	return string(out)
}

// sentinelSettings checks SENTINEL MASTER's fields on every node's Sentinel.
func (c *lifeLab) sentinelSettings(nodes []string, want map[string]string) {
	c.t.Helper()
	for _, n := range nodes {
		out, err := c.sentinel(n, "SENTINEL", "MASTER", "myprimary")
		m := lifeFields(out)
		for k, v := range want {
			if err != nil || m[k] != v {
				c.t.Errorf("%s's Sentinel: %s is %q, want %q (%v)", n, k, m[k], v, err)
			}
		}
	}
}
