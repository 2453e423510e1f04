package check

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"hastack.dev/hastack/modules"
	"hastack.dev/hastack/modules/redis"
)

// Chain is the iptables chain the hsts stack keeps its rules in.
const Chain = "HASTACK"

// header starts every script sent to a node: modules/redis's prelude (the
// one Redis CLI prelude: the password variables, PATH, the CLI the node has,
// asredis on HSTS). Scripts travel on stdin (sh -s) with the password
// filled in, and redis-cli reads it from REDISCLI_AUTH: it is in no command
// line and no process list. q runs the CLI with a time limit, prints its
// output and then "<boundary>=rc N" (check reports the exit code).
func header(boundary string) string {
	return redis.Prelude + "export REDISCLI_AUTH=\"$HASTACK_PW\"\n" +
		"cli=$_cli\n" +
		"q() { out=$(timeout 5 \"$cli\" --no-auth-warning \"$@\" 2>&1 </dev/null); rc=$?; printf '%s\\n' \"$out\" | tr -d '\\r'; echo '" + boundary + "=rc' $rc; }\n"
}

func newBoundary() string {
	var b [8]byte
	rand.Read(b[:])
	return "@@hastack-check-" + hex.EncodeToString(b[:])
}

// healthScript asks the node's own Sentinel and Redis, on the node's private
// IP, and reads the firewall. It changes nothing.
func (c *Checker) healthScript(ip, boundary string) string {
	cl := c.Cluster
	set := modules.Quote(cl.PrimarySet)
	s := func(name, args string) string {
		return fmt.Sprintf("echo '%s %s'\nq -h %s -p %d %s\n", boundary, name, ip, cl.SentinelPort, args)
	}
	var b strings.Builder
	b.WriteString(header(boundary))
	b.WriteString(s("getmaster", "SENTINEL get-master-addr-by-name "+set))
	b.WriteString(s("ckquorum", "SENTINEL CKQUORUM "+set))
	b.WriteString(s("master", "SENTINEL MASTER "+set))
	b.WriteString(s("replicas", "SENTINEL REPLICAS "+set))
	fmt.Fprintf(&b, "echo '%s redis'\nq -h %s -p %d INFO replication\n", boundary, ip, cl.RedisPort)
	if cl.Design == "haproxy" {
		// Which Redis this node's HAProxy reaches: its run_id against each
		// node's own.
		fmt.Fprintf(&b, "echo '%s runid'\nq -h %s -p %d INFO server\n", boundary, ip, cl.RedisPort)
		fmt.Fprintf(&b, "echo '%s haproxy'\nq -h 127.0.0.1 -p %d INFO server\n", boundary, cl.HAProxyPort)
	}
	if cl.Firewall.Manage {
		fmt.Fprintf(&b, "echo '%[1]s input'\niptables -S INPUT 2>&1\necho '%[1]s chain'\niptables -S %[2]s 2>&1\n", boundary, Chain)
	}
	fmt.Fprintf(&b, "echo '%s end'\n", boundary)
	return b.String()
}

// section is one part of a script's output.
type section struct {
	body string // lines the commands printed
	rc   int    // exit code q saw (124: timed out); 0 for other commands
	seen bool   // the section was printed at all
}

// parseSections splits output into modules.Sections; q's
// "<boundary>=rc N" line gives the section's exit code.
func parseSections(out []byte, boundary string) map[string]section {
	m := map[string]section{}
	for _, sec := range modules.Sections(out, boundary) {
		s := section{seen: true}
		var body strings.Builder
		for _, l := range strings.Split(string(sec.Body), "\n") {
			if rc, ok := strings.CutPrefix(l, boundary+"=rc "); ok {
				fmt.Sscan(rc, &s.rc)
			} else if l != "" {
				body.WriteString(l + "\n")
			}
		}
		s.body = body.String()
		m[sec.Name] = s
	}
	return m
}
