package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// haproxyPort is HAProxy's port on every node (seed 002, the schema's default).
const haproxyPort = "31414"

// TestHaproxyDesign proves seed 002's design on three fresh nodes: every
// node's HAProxy routes 127.0.0.1:31414 to the primary the Sentinels name,
// asnodeadmin replicates through it, a restarted HAProxy never sends a
// write to a replica, and after a failover every HAProxy follows the new
// primary with nothing left to plan.
func TestHaproxyDesign(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/usr/sbin/haproxy"); err != nil {
		t.Skip("needs /usr/sbin/haproxy (Debian package haproxy)")
	}
	suite := time.Now()
	c := newCluster(t, 3, debugExtra+"\ndesign: \"haproxy\"")

	c.must(0, "apply", "-auto-approve")
	if out := c.must(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
		t.Fatal("the plan after apply is not empty")
	}
	c.must(0, "check", "-wait", "30s")
	primary := c.primary("node1")
	c.waitRoutes(primary)
	// asnodeadmin writes and reads through each node's HAProxy.
	c.must(0, "check", "-replication")

	t.Run("restart window", func(t *testing.T) {
		c := c.in(t)
		for _, n := range c.lab.Nodes {
			w := c.restartWindow(n.Name, "restart")
			t.Logf("%s: after systemctl restart haproxy: %s", n.Name, w)
			if w.readonly > 0 {
				t.Errorf("%s: %d writes reached a replica (READONLY) after the restart", n.Name, w.readonly)
			}
			if w.firstOK < 0 {
				t.Errorf("%s: no write succeeded after the restart", n.Name)
			}
		}
	})

	// A reload (what apply does when haproxy.cfg changes) starts the new
	// process from the servers' saved states (#HAProxyReload): no client
	// is refused and none reaches a replica.
	t.Run("reload window", func(t *testing.T) {
		c := c.in(t)
		for _, n := range c.lab.Nodes {
			w := c.restartWindow(n.Name, "reload")
			t.Logf("%s: during systemctl reload haproxy: %s", n.Name, w)
			// One refused connection in some 1,200 was seen once, with two
			// whole e2e suites running at once on the 2 cores; the errors
			// are logged above to tell why if it comes back.
			if w.readonly > 0 || w.other > 1 {
				t.Errorf("%s: %d writes reached a replica and %d were refused or closed during a reload; want none (one at most on a starved machine)", n.Name, w.readonly, w.other)
			}
			if w.firstOK < 0 {
				t.Errorf("%s: no write succeeded after the reload", n.Name)
			}
		}
	})

	// A replica that says role:master on its own (a woken old primary, a
	// promotion Sentinel aborted) gets no client: every HAProxy keeps
	// routing to the primary its Sentinel names. HAProxy checks every
	// second and Sentinel turns such a node back only 8 s after it sees it,
	// so 3 s after REPLICAOF NO ONE the rogue is up as far as role:master
	// goes (with a role-only check, two masters up: every client refused).
	t.Run("rogue master", func(t *testing.T) {
		c := c.in(t)
		rogue := "node3"
		if out := c.redisCLI(rogue, "-h", c.ip(rogue), "-p", "31415", "REPLICAOF", "NO", "ONE"); out != "OK" {
			t.Fatalf("REPLICAOF NO ONE on %s: %q", rogue, out)
		}
		time.Sleep(3 * time.Second)
		for _, n := range c.lab.Nodes {
			key := "hastack:rogue:" + n.Name
			if out := c.redisCLI(n.Name, "-h", "127.0.0.1", "-p", haproxyPort, "SET", key, n.Name); out != "OK" {
				t.Errorf("%s: SET through HAProxy while %s says role:master answered %q", n.Name, rogue, out)
			}
			if out := c.redisCLI(primary, "-h", c.ip(primary), "-p", "31415", "GET", key); out != n.Name {
				t.Errorf("%s: the write is not on the primary %s: GET answered %q", n.Name, primary, out)
			}
		}
		if role := infoField(c.redisCLI(rogue, "-h", c.ip(rogue), "-p", "31415", "INFO", "replication"), "role"); role != "master" {
			t.Fatalf("%s is %s again already: the writes above proved nothing", rogue, role)
		}
		// Sentinel turns it back into a replica; the drill needs it.
		deadline := time.Now().Add(40 * time.Second)
		for {
			info := c.redisCLI(rogue, "-h", c.ip(rogue), "-p", "31415", "INFO", "replication")
			if infoField(info, "role") == "slave" && infoField(info, "master_link_status") == "up" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Sentinel did not turn %s back into a replica within 40 s", rogue)
			}
			time.Sleep(250 * time.Millisecond)
		}
	})

	// check sees a node whose HAProxy is down, names it, and passes again
	// once it runs.
	t.Run("check sees a dead HAProxy", func(t *testing.T) {
		c := c.in(t)
		c.must(0, "check", "-wait", "30s") // settled after the rogue master
		if out, err := c.exec("node3", "systemctl", "stop", "haproxy"); err != nil {
			t.Fatalf("node3: systemctl stop haproxy: %v: %s", err, out)
		}
		out := c.must(1, "check")
		if !regexp.MustCompile(`(?m)^FAIL\s+node3\s+haproxy: HAProxy at 127\.0\.0\.1:31414 gives no Redis`).MatchString(out) {
			t.Errorf("check does not name node3's HAProxy:\n%s", out)
		}
		if regexp.MustCompile(`(?m)^FAIL\s+node[12]\s+haproxy`).MatchString(out) {
			t.Errorf("check blames the other nodes' HAProxy too:\n%s", out)
		}
		if out, err := c.exec("node3", "systemctl", "start", "haproxy"); err != nil {
			t.Fatalf("node3: systemctl start haproxy: %v: %s", err, out)
		}
		c.must(0, "check", "-wait", "30s")
	})

	// The price of asking the Sentinel: while node2's own Sentinel restarts
	// (as hastack does one node at a time), node2's clients are refused;
	// no write may be lost and writes must come back.
	t.Run("sentinel restart", func(t *testing.T) {
		c := c.in(t)
		client := c.startProxyClient("node2")
		time.Sleep(time.Second)
		if out, err := c.exec("node2", "systemctl", "restart", "asperaredissentinel"); err != nil {
			t.Fatalf("node2: systemctl restart asperaredissentinel: %v: %s", err, out)
		}
		time.Sleep(4 * time.Second)
		r := client.finish(primary)
		t.Logf("client through node2's HAProxy across a restart of node2's Sentinel: %s", r)
		if len(r.lost) > 0 || r.readonly > 0 {
			t.Errorf("%d acknowledged writes lost, %d READONLY", len(r.lost), r.readonly)
		}
		if r.byNode[primary] == 0 || r.byNode[primary] != r.acked {
			t.Errorf("acknowledged writes by node %v, want all on the primary %s", r.byNode, primary)
		}
		if out := c.redisCLI("node2", "-h", "127.0.0.1", "-p", haproxyPort, "SET", "hastack:after-sentinel-restart", "1"); out != "OK" {
			t.Errorf("node2: SET through HAProxy 4 s after its Sentinel restarted answered %q", out)
		}
	})

	// A client writes through node2's HAProxy during the drill: while the
	// paused old primary wakes up still saying role:master, HAProxy must not
	// hand it writes (they would be lost when Sentinel demotes it).
	client := c.startProxyClient("node2")
	d := c.failover()
	t.Logf("the cluster had no primary for %s", d)
	newPrimary := c.primary("node2")
	if newPrimary == primary {
		t.Fatalf("the Sentinels still name %s after the drill", primary)
	}
	start := time.Now()
	c.waitRoutes(newPrimary)
	t.Logf("every HAProxy routes to the new primary %s %.1fs after the drill returned", newPrimary, time.Since(start).Seconds())
	r := client.finish(newPrimary)
	t.Logf("client through node2's HAProxy during the failover: %s", r)
	if r.acked == 0 {
		t.Error("the client had no acknowledged write")
	}
	if len(r.lost) > 0 {
		t.Errorf("%d writes acknowledged through HAProxy are not on the new primary (first: %v)", len(r.lost), r.lost[:min(5, len(r.lost))])
	}
	for _, n := range c.lab.Nodes {
		key := "hastack:haproxy:" + n.Name
		if out := c.redisCLI(n.Name, "-h", "127.0.0.1", "-p", haproxyPort, "SET", key, n.Name); out != "OK" {
			t.Errorf("%s: SET through HAProxy answered %q", n.Name, out)
		}
		if out := c.redisCLI(newPrimary, "-p", "31415", "-h", c.ip(newPrimary), "GET", key); out != n.Name {
			t.Errorf("%s's write is not on the new primary: GET answered %q", n.Name, out)
		}
	}
	if out := c.must(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
		t.Fatal("the plan after the failover is not empty")
	}
	t.Logf("TestHaproxyDesign took %.1fs", time.Since(suite).Seconds())
}

// ip is node's address in the lab.
func (c *cluster) ip(node string) string {
	c.t.Helper()
	n, ok := c.lab.Node(node)
	if !ok {
		c.t.Fatalf("no lab node %s", node)
	}
	return n.IP
}

// routedTo says which node 127.0.0.1:31414 reaches from node, by run_id,
// or why it cannot tell. The node reached must also say ROLE master.
func (c *cluster) routedTo(node string, runIDs map[string]string) (string, error) {
	cli := []string{"env", "REDISCLI_AUTH=" + testPassword, "timeout", "5", "redis-cli", "--no-auth-warning", "-h", "127.0.0.1", "-p", haproxyPort}
	role, err := c.exec(node, append(cli, "ROLE")...)
	if err != nil {
		return "", fmt.Errorf("ROLE: %v: %s", err, role)
	}
	if r, _, _ := strings.Cut(role, "\n"); r != "master" {
		return "", fmt.Errorf("ROLE answered %q", strings.TrimSpace(role))
	}
	info, err := c.exec(node, append(cli, "INFO", "server")...)
	if err != nil {
		return "", fmt.Errorf("INFO server: %v: %s", err, info)
	}
	id := infoField(info, "run_id")
	for name, rid := range runIDs {
		if rid == id {
			return name, nil
		}
	}
	return "", fmt.Errorf("run_id %q is no node's", id)
}

// runIDs asks each node's Redis directly for its run_id.
func (c *cluster) runIDs() map[string]string {
	c.t.Helper()
	m := map[string]string{}
	for _, n := range c.lab.Nodes {
		m[n.Name] = infoField(c.redisCLI(n.Name, "-h", n.IP, "-p", "31415", "INFO", "server"), "run_id")
	}
	return m
}

// waitRoutes waits (30 s at most) until every node's HAProxy routes to want,
// the primary every node's Sentinel names.
func (c *cluster) waitRoutes(want string) {
	c.t.Helper()
	ids := c.runIDs()
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.lab.Nodes {
		for {
			got, err := c.routedTo(n.Name, ids)
			if err == nil && got == want {
				if p := c.primary(n.Name); p != want {
					c.t.Fatalf("%s's Sentinel names %s, not %s", n.Name, p, want)
				}
				c.t.Logf("%s: 127.0.0.1:%s reaches %s (ROLE master, same run_id)", n.Name, haproxyPort, want)
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s: HAProxy does not route to %s within 30s: reaches %q, %v", n.Name, want, got, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// infoField is one field of an INFO answer.
func infoField(info, key string) string {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), key+":"); ok {
			return v
		}
	}
	return ""
}

// windowScript sends, for $1 seconds, one SET per new connection through
// HAProxy (like asnodeadmin: redis-cli per request) while HAProxy restarts
// at the start of it: the client runs before, during and after the
// restart, so it sees the new HAProxy's very first connections. It counts
// the answers: OK, READONLY (a replica got the write) and anything else
// (refused or closed while HAProxy is down or refuses: the client sees an
// error and may retry). It prints "ok readonly other first_ok_ms
// last_readonly_ms", times after the restart returned, then the first
// three errors, one "err <ms> ms: <answer>" line each.
const windowScript = `
set -u
now() { local t=${EPOCHREALTIME/./}; echo $(( 10#$t / 1000 )); }
start=$(now)
( systemctl "$2" haproxy; now >/tmp/hastack-haproxy-restarted ) &
ok=0 ro=0 other=0 ok_at=() last_ro=-1 i=0 errs=()
while (( $(now) - start < $1 * 1000 )); do
	i=$((i + 1))
	out=$(timeout 2 redis-cli --no-auth-warning -h 127.0.0.1 -p ` + haproxyPort + ` SET hastack:haproxy:window "$i" 2>&1 </dev/null)
	t=$(now)
	case $out in
	OK) ok=$((ok + 1)); ok_at+=("$t") ;;
	*READONLY*) ro=$((ro + 1)); last_ro=$t ;;
	*) other=$((other + 1)); (( other <= 3 )) && errs+=("$t ${out//$'\n'/ }") ;;
	esac
done
wait
up=$(</tmp/hastack-haproxy-restarted)
first_ok=-1
for t in "${ok_at[@]}"; do (( t >= up )) && { first_ok=$((t - up)); break; }; done
(( last_ro >= 0 )) && last_ro=$((last_ro - up))
echo "$ok $ro $other $first_ok $last_ro"
for e in "${errs[@]}"; do echo "err $(( ${e%% *} - up )) ms: ${e#* }"; done
`

// window is what windowScript counted.
type window struct {
	ok, readonly, other, firstOK, lastReadonly int
	errs                                       []string
}

func (w window) String() string {
	s := fmt.Sprintf("%d OK, %d READONLY, %d refused/closed; first OK %d ms after the restart returned, last READONLY at %d ms (-1: none)",
		w.ok, w.readonly, w.other, w.firstOK, w.lastReadonly)
	for _, e := range w.errs {
		s += "\n\t" + e
	}
	return s
}

// restartWindow runs windowScript on node for 3 s, longer than the checks
// need to mark the replicas down (fall x inter), with systemctl verb
// ("restart" or "reload").
func (c *cluster) restartWindow(node, verb string) window {
	c.t.Helper()
	out, err := c.exec(node, "env", "REDISCLI_AUTH="+testPassword, "bash", "-c", windowScript, "window", "3", verb)
	if err != nil {
		c.t.Fatalf("%s: %v: %s", node, err, out)
	}
	var f [5]int
	first, rest, _ := strings.Cut(strings.TrimSpace(out), "\n")
	fields := strings.Fields(first)
	var errs []string
	for _, l := range strings.Split(rest, "\n") {
		if e, ok := strings.CutPrefix(l, "err "); ok {
			errs = append(errs, e)
		} else if strings.TrimSpace(l) != "" {
			fields = nil // anything else: the script went wrong
		}
	}
	if len(fields) != 5 {
		log, _ := c.exec(node, "tail", "-n", "20", "/var/log/lab/haproxy.service.log")
		c.t.Fatalf("%s: window script printed %q\nhaproxy.service.log:\n%s", node, out, log)
	}
	for i, s := range fields {
		if f[i], err = strconv.Atoi(s); err != nil {
			c.t.Fatalf("%s: window script printed %q", node, out)
		}
	}
	return window{f[0], f[1], f[2], f[3], f[4], errs}
}
