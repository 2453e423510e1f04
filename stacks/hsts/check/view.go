package check

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"hastack.dev/hastack/modules/redis"
	"hastack.dev/hastack/stacks/hsts"
)

// view is what one node's script printed.
type view struct {
	node string
	err  error // the script could not run (SSH)
	secs map[string]section
}

func parseView(node string, out []byte, boundary string, err error) view {
	v := view{node: node, err: err, secs: parseSections(out, boundary)}
	if err == nil && !v.secs["end"].seen {
		v.err = fmt.Errorf("the check script's output was cut short")
	}
	return v
}

// errorRE matches what redis-cli prints for an error reply or a failed
// connection (it exits 0 on error replies in raw mode).
var errorRE = regexp.MustCompile(`^(ERR|NOAUTH|WRONGPASS|NOPERM|LOADING|BUSY|MASTERDOWN|NOQUORUM|IDONTKNOW|NOREPLICAS|AUTH failed|Could not connect|Error|\(error\))\b`)

// failure says why a redis-cli call gave no good answer, or "".
func (s section) failure() string {
	first, _, _ := strings.Cut(s.body, "\n")
	switch {
	case !s.seen:
		return "not asked (the script stopped early)"
	case s.rc == 124:
		return "no answer within 5 s"
	case s.rc != 0:
		return fmt.Sprintf("redis-cli exited %d: %s", s.rc, first)
	case errorRE.MatchString(first):
		return first
	}
	return ""
}

// pairs reads redis-cli's raw output of flat key/value arrays, by
// modules/redis's reader. start names the key that begins a new record
// (SENTINEL REPLICAS returns several).
func (s section) pairs(start string) []map[string]string { return redis.Records(s.body, start) }

// info reads "key:value" lines (INFO), by modules/redis's reader.
func (s section) info() map[string]string { return redis.InfoFields(s.body) }

// named is the primary a node's Sentinel names, "ip:port", or "": its
// get-master-addr-by-name read by modules/redis's reader.
func (v view) named() string {
	s := v.secs["getmaster"]
	if s.failure() != "" {
		return ""
	}
	return strings.Replace(redis.MasterAddr(s.body), " ", ":", 1)
}

// consensus is the primary ("ip:port") more than half of the nodes'
// Sentinels name, by the one vote planning and rollouts use (hsts.Tally);
// disagree says they name more than one.
func consensus(views []view) (primary string, disagree bool) {
	tops := map[string]hsts.Topology{}
	var nodes []string
	for _, v := range views {
		nodes = append(nodes, v.node)
		if a := v.named(); a != "" {
			ip, port, _ := strings.Cut(a, ":")
			tops[v.node] = hsts.Topology{SentinelUp: true, SentinelPrimary: ip + " " + port}
		}
	}
	vote := hsts.Tally(nodes, tops)
	addr := vote.Majority(len(views))
	return strings.Replace(addr, " ", ":", 1), len(vote.Votes) > 1
}

func (c *Checker) addrName(addr string) string {
	ip, _, _ := strings.Cut(addr, ":")
	if n := c.nodeByIP(ip); n != "" {
		return n + " (" + addr + ")"
	}
	return addr + " (not a node of this cluster)"
}

// evaluate turns every node's view into results.
func (c *Checker) evaluate(views []view) Report {
	var r Report
	cl := c.Cluster
	others := len(cl.Nodes) - 1
	primary, _ := consensus(views)
	add := func(node, check string, ok bool, format string, args ...any) {
		r = append(r, Result{Node: node, Check: check, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}
	masters := []string{}
	for _, v := range views {
		n := v.node
		ip := c.ipOf(n)
		if v.err != nil {
			add(n, "ssh", false, "could not run the check script: %v", v.err)
			continue
		}
		// Sentinel: answers and names the agreed primary.
		sentinelAt := fmt.Sprintf("%s:%d", ip, cl.SentinelPort)
		if f := v.secs["getmaster"].failure(); f != "" {
			add(n, "sentinel", false, "Sentinel at %s does not answer: %s", sentinelAt, f)
		} else {
			switch a := v.named(); {
			case a == "":
				add(n, "sentinel", false, "Sentinel at %s names no primary for %q", sentinelAt, cl.PrimarySet)
			case primary == "":
				add(n, "sentinel", false, "names %s, but the Sentinels do not agree on a primary", c.addrName(a))
			case a != primary:
				add(n, "sentinel", false, "names %s, but the other Sentinels name %s", c.addrName(a), c.addrName(primary))
			case c.nodeByIP(strings.Split(a, ":")[0]) == "" || !strings.HasSuffix(a, ":"+strconv.Itoa(cl.RedisPort)):
				add(n, "sentinel", false, "names %s, which is not a node's Redis port", a)
			default:
				add(n, "sentinel", true, "answers and names %s as primary", c.addrName(a))
			}
			// CKQUORUM and what this Sentinel knows.
			q := v.secs["ckquorum"]
			if f := q.failure(); f != "" {
				add(n, "quorum", false, "SENTINEL CKQUORUM %s: %s", cl.PrimarySet, f)
			} else {
				add(n, "quorum", true, "%s", strings.TrimSpace(q.body))
			}
			ok, detail := c.peers(v, others)
			add(n, "sentinel-peers", ok, "%s", detail)
		}
		// Redis: its role, and for a replica its link to the primary.
		redisAt := fmt.Sprintf("%s:%d", ip, cl.RedisPort)
		rs := v.secs["redis"]
		if f := rs.failure(); f != "" {
			add(n, "redis", false, "Redis at %s does not answer: %s", redisAt, f)
		} else {
			in := rs.info()
			me := redisAt
			switch in["role"] {
			case "master":
				masters = append(masters, n)
				if primary != "" && primary != me {
					add(n, "redis", false, "says role:master, but the Sentinels name %s", c.addrName(primary))
				} else {
					add(n, "redis", true, "role:master, %s replicas connected", in["connected_slaves"])
					r[len(r)-1].role = "master"
				}
			case "slave":
				up := in["master_link_status"] == "up"
				from := in["master_host"] + ":" + in["master_port"]
				switch {
				case primary == me:
					add(n, "redis", false, "says role:slave of %s, but the Sentinels name this node as primary", c.addrName(from))
				case primary != "" && from != primary:
					add(n, "redis", false, "replicates from %s, not from the primary %s", c.addrName(from), c.addrName(primary))
				case !up:
					add(n, "redis", false, "replica of %s, but master_link_status is %s", c.addrName(from), in["master_link_status"])
				default:
					add(n, "redis", true, "replica of %s, link up", c.addrName(from))
				}
			default:
				add(n, "redis", false, "INFO replication gave no role: %q", strings.TrimSpace(rs.body))
			}
		}
		if cl.Firewall.Manage {
			ok, detail := c.firewall(v)
			add(n, "firewall", ok, "%s", detail)
		}
		if cl.Design == "haproxy" {
			ok, detail := c.haproxy(v, views, primary)
			add(n, "haproxy", ok, "%s", detail)
		}
	}
	// Exactly one primary, and the Sentinels name it.
	switch {
	case primary == "":
		add("", "primary", false, "the Sentinels agree on no primary (more than half must name the same one)")
	case len(masters) == 1 && c.ipOf(masters[0])+":"+strconv.Itoa(cl.RedisPort) == primary:
		add("", "primary", true, "exactly one Redis says role:master: %s, the one the Sentinels name", masters[0])
	default:
		add("", "primary", false, "Redis says role:master on [%s]; the Sentinels name %s", strings.Join(masters, ", "), c.addrName(primary))
	}
	return r
}

// peers checks that a Sentinel knows every other Sentinel and every replica,
// and sees none of them down.
func (c *Checker) peers(v view, others int) (bool, string) {
	ms := v.secs["master"].pairs("name")
	if f := v.secs["master"].failure(); f != "" || len(ms) != 1 {
		return false, fmt.Sprintf("SENTINEL MASTER %s: %s", c.Cluster.PrimarySet, f)
	}
	m := ms[0]
	var bad []string
	if m["flags"] != "master" {
		bad = append(bad, "primary flags "+m["flags"])
	}
	if m["num-other-sentinels"] != strconv.Itoa(others) {
		bad = append(bad, fmt.Sprintf("knows %s other Sentinels, want %d", m["num-other-sentinels"], others))
	}
	if m["num-slaves"] != strconv.Itoa(others) {
		bad = append(bad, fmt.Sprintf("knows %s replicas, want %d", m["num-slaves"], others))
	}
	if f := v.secs["replicas"].failure(); f != "" {
		bad = append(bad, "SENTINEL REPLICAS: "+f)
	} else {
		var down []string
		for _, rep := range v.secs["replicas"].pairs("name") {
			if rep["flags"] != "slave" || rep["master-link-status"] != "ok" {
				down = append(down, fmt.Sprintf("%s flags %s link %s", c.addrName(rep["ip"]+":"+rep["port"]), rep["flags"], rep["master-link-status"]))
			}
		}
		sort.Strings(down)
		if len(down) > 0 {
			bad = append(bad, "replicas not in sync: "+strings.Join(down, "; "))
		}
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; ")
	}
	return true, fmt.Sprintf("knows %d other Sentinels and %d replicas, all up", others, others)
}

// firewall checks the rules modules/firewall.go keeps: a jump from INPUT to
// the chain, an ACCEPT per cluster IP and port, then a REJECT per port.
func (c *Checker) firewall(v view) (bool, string) {
	cl := c.Cluster
	jump := "-A INPUT -j " + Chain
	if !strings.Contains("\n"+v.secs["input"].body, "\n"+jump+"\n") {
		return false, fmt.Sprintf("INPUT does not jump to chain %s: Redis and Sentinel ports are open to everyone", Chain)
	}
	// A rule before the jump could accept anyone first.
	for _, l := range strings.Split(v.secs["input"].body, "\n") {
		if strings.HasPrefix(l, "-A INPUT") {
			if l != jump {
				return false, fmt.Sprintf("INPUT has %q before the jump to chain %s, which may let anyone in first", l, Chain)
			}
			break
		}
	}
	chain := v.secs["chain"].body
	var missing []string
	for _, p := range []int{cl.RedisPort, cl.SentinelPort} {
		last := -1
		for _, n := range cl.Nodes {
			rule := fmt.Sprintf("-A %s -s %s/32 -p tcp -m tcp --dport %d -j ACCEPT", Chain, n.IP, p)
			i := strings.Index(chain, rule+"\n")
			if i < 0 {
				missing = append(missing, rule)
			}
			last = max(last, i)
		}
		// The REJECT must come after every ACCEPT, or it shuts the cluster out.
		rule := fmt.Sprintf("-A %s -p tcp -m tcp --dport %d -j REJECT", Chain, p)
		if i := strings.Index(chain, rule); i < 0 || i < last {
			missing = append(missing, rule+" (after the ACCEPTs)")
		}
	}
	if len(missing) > 0 {
		return false, fmt.Sprintf("chain %s lacks %d rules, first: %s", Chain, len(missing), missing[0])
	}
	return true, fmt.Sprintf("chain %s accepts ports %d and %d from the %d cluster IPs only", Chain, cl.RedisPort, cl.SentinelPort, len(cl.Nodes))
}

// haproxy checks that the node's HAProxy (design 002) reaches the primary
// the Sentinels name: the run_id behind 127.0.0.1:<port> is that node's.
func (c *Checker) haproxy(v view, views []view, primary string) (bool, string) {
	at := fmt.Sprintf("127.0.0.1:%d", c.Cluster.HAProxyPort)
	hs := v.secs["haproxy"]
	if f := hs.failure(); f != "" {
		return false, fmt.Sprintf("HAProxy at %s gives no Redis: %s", at, f)
	}
	id := hs.info()["run_id"]
	reached := ""
	for _, o := range views {
		if rid := o.secs["runid"].info()["run_id"]; rid != "" && rid == id {
			reached = o.node
		}
	}
	want := c.nodeByIP(strings.Split(primary, ":")[0])
	switch {
	case id == "":
		return false, fmt.Sprintf("%s answered INFO server with no run_id", at)
	case reached == "":
		return false, fmt.Sprintf("%s reaches a Redis that is no node's of this cluster (run_id %s)", at, id)
	case want == "":
		return false, fmt.Sprintf("%s reaches %s, but the Sentinels agree on no primary", at, reached)
	case reached != want:
		return false, fmt.Sprintf("%s reaches %s, not the primary %s", at, reached, want)
	}
	return true, fmt.Sprintf("%s reaches %s, the primary (same run_id)", at, want)
}
