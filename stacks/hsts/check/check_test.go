package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/stacks/hsts"
)

const pw = "unit-Test-Passw0rd"

var boundaryRE = regexp.MustCompile(`@@hastack-check-[0-9a-f]+`)

// fakeNode answers a check script with canned sections (name → body; a
// body starting with "rc=N " sets q's exit code).
type fakeNode struct {
	name     string
	sections map[string]string
	mu       sync.Mutex
	stdin    []string
	cmds     []string
}

func (f *fakeNode) Name() string { return f.name }
func (f *fakeNode) Close() error { return nil }
func (f *fakeNode) WriteFile(context.Context, host.File) error {
	return errors.New("check must not write files")
}

func (f *fakeNode) Run(_ context.Context, cmd string, stdin io.Reader) (host.Result, error) {
	var in []byte
	if stdin != nil {
		in, _ = io.ReadAll(stdin)
	}
	f.mu.Lock()
	f.cmds = append(f.cmds, cmd)
	f.stdin = append(f.stdin, string(in))
	f.mu.Unlock()
	b := boundaryRE.FindString(string(in))
	var out bytes.Buffer
	// Answer the sections the script asks for, in its order.
	for _, m := range regexp.MustCompile(`echo '`+b+` (\w+)'`).FindAllStringSubmatch(string(in), -1) {
		name := m[1]
		fmt.Fprintf(&out, "%s %s\n", b, name)
		body, rc := f.sections[name], 0
		if strings.HasPrefix(body, "rc=") {
			fmt.Sscanf(body, "rc=%d", &rc)
			_, body, _ = strings.Cut(body, " ")
		}
		out.WriteString(body)
		if name != "input" && name != "chain" && name != "end" {
			fmt.Fprintf(&out, "%s=rc %d\n", b, rc)
		}
	}
	return host.Result{Stdout: out.Bytes()}, nil
}

var ips = []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}

func testCluster() *hsts.Cluster {
	cl := &hsts.Cluster{Cluster: &config.Cluster{Name: "c"}, PrimarySet: "myprimary", RedisPort: 31415, SentinelPort: 41415,
		DownAfterMs: 300, FailoverTimeoutMs: 1000, Firewall: hsts.Firewall{Manage: true}}
	for i, ip := range ips {
		cl.Nodes = append(cl.Nodes, config.Node{Name: fmt.Sprintf("node%d", i+1), IP: ip})
	}
	return cl
}

// healthy answers for node i of a cluster whose primary is node1.
func healthy(i int) map[string]string {
	s := map[string]string{
		"getmaster": "10.0.0.1\n31415\n",
		"ckquorum":  "OK 3 usable Sentinels. Quorum and failover authorization can be reached\n",
		"master":    "name\nmyprimary\nip\n10.0.0.1\nport\n31415\nflags\nmaster\nnum-slaves\n2\nnum-other-sentinels\n2\nquorum\n2\n",
		"replicas":  "name\n10.0.0.2:31415\nip\n10.0.0.2\nport\n31415\nflags\nslave\nmaster-link-status\nok\nname\n10.0.0.3:31415\nip\n10.0.0.3\nport\n31415\nflags\nslave\nmaster-link-status\nok\n",
		"input":     "-P INPUT ACCEPT\n-A INPUT -j HASTACK\n",
		"end":       "",
	}
	if i == 0 {
		s["redis"] = "# Replication\nrole:master\nconnected_slaves:2\n"
	} else {
		s["redis"] = "# Replication\nrole:slave\nmaster_host:10.0.0.1\nmaster_port:31415\nmaster_link_status:up\n"
	}
	var chain strings.Builder
	chain.WriteString("-N HASTACK\n")
	for _, p := range []int{31415, 41415} {
		for _, ip := range ips {
			fmt.Fprintf(&chain, "-A HASTACK -s %s/32 -p tcp -m tcp --dport %d -j ACCEPT\n", ip, p)
		}
		fmt.Fprintf(&chain, "-A HASTACK -p tcp -m tcp --dport %d -j REJECT --reject-with tcp-reset\n", p)
	}
	s["chain"] = chain.String()
	return s
}

// newChecker builds a checker over fake nodes; edit changes node i's answers.
func newChecker(edit func(i int, s map[string]string)) (*Checker, []*fakeNode) {
	cl := testCluster()
	hosts := map[string]host.Host{}
	var fakes []*fakeNode
	for i, n := range cl.Nodes {
		s := healthy(i)
		if edit != nil {
			edit(i, s)
		}
		f := &fakeNode{name: n.Name, sections: s}
		fakes = append(fakes, f)
		hosts[n.Name] = f
	}
	return &Checker{Cluster: cl, Hosts: hosts, Secret: secret.New(pw)}, fakes
}

func failures(r Report) string { return strings.Join(r.Failed(), ", ") }

func TestHealthyClusterPasses(t *testing.T) {
	c, fakes := newChecker(nil)
	r := c.Health(context.Background())
	if !r.OK() {
		t.Fatalf("healthy cluster failed: %s", failures(r))
	}
	// 5 checks per node and the cluster-wide primary check.
	if len(r) != 16 {
		t.Errorf("%d results, want 16", len(r))
	}
	var out bytes.Buffer
	r.Write(&out)
	if !strings.HasSuffix(out.String(), "All 16 checks passed.\n") {
		t.Errorf("summary:\n%s", out.String())
	}
	// The password travels in the script on stdin, never on a command line.
	for _, f := range fakes {
		for i, cmd := range f.cmds {
			if strings.Contains(cmd, pw) {
				t.Errorf("%s: password on the command line", f.name)
			}
			if !regexp.MustCompile("HASTACK_PW='?"+pw).MatchString(f.stdin[i]) || !strings.Contains(f.stdin[i], `export REDISCLI_AUTH="$HASTACK_PW"`) {
				t.Errorf("%s: the script does not set REDISCLI_AUTH from the password", f.name)
			}
		}
	}
}

func TestFailuresNameNodeAndWhat(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(i int, s map[string]string)
		want string // the failures, in order
	}{
		{"dead sentinel", func(i int, s map[string]string) {
			if i == 1 {
				for _, k := range []string{"getmaster", "ckquorum", "master", "replicas"} {
					s[k] = "rc=1 Could not connect to Redis at 10.0.0.2:41415: Connection refused\n"
				}
			}
		}, "node2: sentinel"},
		{"dead redis", func(i int, s map[string]string) {
			if i == 2 {
				s["redis"] = "rc=1 Could not connect to Redis at 10.0.0.3:31415: Connection refused\n"
			}
		}, "node3: redis"},
		{"paused redis", func(i int, s map[string]string) {
			if i == 2 {
				s["redis"] = "rc=124 \n"
			}
		}, "node3: redis"},
		{"sentinels disagree", func(i int, s map[string]string) {
			if i == 2 {
				s["getmaster"] = "10.0.0.3\n31415\n"
			}
		}, "node3: sentinel"},
		{"no quorum", func(i int, s map[string]string) {
			if i == 0 {
				s["ckquorum"] = "NOQUORUM 1 usable Sentinels. Not enough available Sentinels to reach the specified quorum for this master\n"
			}
		}, "node1: quorum"},
		{"unknown sentinel", func(i int, s map[string]string) {
			if i == 0 {
				s["master"] = strings.Replace(s["master"], "num-other-sentinels\n2", "num-other-sentinels\n1", 1)
			}
		}, "node1: sentinel-peers"},
		{"replica down in sentinel", func(i int, s map[string]string) {
			if i == 1 {
				s["replicas"] = strings.Replace(s["replicas"], "flags\nslave\nmaster-link-status\nok\nname\n10.0.0.3", "flags\ns_down,slave,disconnected\nmaster-link-status\nerr\nname\n10.0.0.3", 1)
			}
		}, "node2: sentinel-peers"},
		{"link down", func(i int, s map[string]string) {
			if i == 1 {
				s["redis"] = strings.Replace(s["redis"], "master_link_status:up", "master_link_status:down", 1)
			}
		}, "node2: redis"},
		{"two masters", func(i int, s map[string]string) {
			if i == 2 {
				s["redis"] = "role:master\nconnected_slaves:0\n"
			}
		}, "node3: redis, primary"},
		{"no jump", func(i int, s map[string]string) {
			if i == 0 {
				s["input"] = "-P INPUT ACCEPT\n"
			}
		}, "node1: firewall"},
		{"missing reject", func(i int, s map[string]string) {
			if i == 1 {
				s["chain"] = strings.Replace(s["chain"], "-A HASTACK -p tcp -m tcp --dport 41415 -j REJECT --reject-with tcp-reset\n", "", 1)
			}
		}, "node2: firewall"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newChecker(tc.edit)
			r := c.Health(context.Background())
			if got := failures(r); got != tc.want {
				var out bytes.Buffer
				r.Write(&out)
				t.Errorf("failures %q, want %q\n%s", got, tc.want, out.String())
			}
		})
	}
}

func TestSSHFailureIsReported(t *testing.T) {
	c, _ := newChecker(nil)
	c.Hosts["node2"] = brokenHost{}
	r := c.Health(context.Background())
	if got := failures(r); !strings.HasPrefix(got, "node2: ssh") {
		t.Errorf("failures %q, want node2: ssh first", got)
	}
}

type brokenHost struct{ host.Host }

func (brokenHost) Run(context.Context, string, io.Reader) (host.Result, error) {
	return host.Result{}, errors.New("connection lost")
}

func TestFailoverNeedsDebug(t *testing.T) {
	c, fakes := newChecker(func(i int, s map[string]string) {
		s["debug"] = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.\n"
	})
	_, r, err := c.Failover(context.Background(), 0)
	if !errors.Is(err, ErrDebugDisabled) {
		t.Fatalf("err = %v, want ErrDebugDisabled", err)
	}
	if !strings.Contains(err.Error(), `redis: debugCommand: "yes"`) || !strings.Contains(err.Error(), "hastack apply") {
		t.Errorf("the message does not say how to enable DEBUG: %v", err)
	}
	if !r.OK() {
		t.Errorf("the health report before the drill failed: %s", failures(r))
	}
	for _, f := range fakes {
		for _, in := range f.stdin {
			if strings.Contains(in, "DEBUG SLEEP") && !strings.Contains(in, "DEBUG SLEEP 0") {
				t.Errorf("%s: the primary was paused although DEBUG is off", f.name)
			}
		}
	}
}

func TestFailoverRefusesUnhealthyCluster(t *testing.T) {
	c, _ := newChecker(func(i int, s map[string]string) {
		if i == 1 {
			s["redis"] = "rc=1 Could not connect\n"
		}
	})
	_, _, err := c.Failover(context.Background(), 0)
	if err == nil || !strings.Contains(err.Error(), "not healthy before the drill") || !strings.Contains(err.Error(), "node2: redis") {
		t.Errorf("err = %v", err)
	}
}

func TestListed(t *testing.T) {
	out := " user          system user    acls\n ==========    ===========    ====\n  hastack-check-1    root    []\n"
	if !listed(out, "hastack-check-1") || listed(out, "hastack-check") {
		t.Error("listed matches whole words only")
	}
}

// In the HAProxy design (002) each node's HAProxy must reach the primary:
// the run_id behind 127.0.0.1:31414 is the primary's own.
func TestHAProxyReachesThePrimary(t *testing.T) {
	runID := func(i int) string { return fmt.Sprintf("# Server\nrun_id:%040d\n", i+1) }
	check := func(edit func(i int, s map[string]string)) Report {
		t.Helper()
		c, _ := newChecker(func(i int, s map[string]string) {
			s["runid"] = runID(i)
			s["haproxy"] = runID(0) // node1 is the primary
			if edit != nil {
				edit(i, s)
			}
		})
		c.Cluster.Design, c.Cluster.HAProxyPort = "haproxy", 31414
		return c.Health(context.Background())
	}
	r := check(nil)
	if !r.OK() || len(r) != 19 {
		t.Fatalf("healthy HAProxy design: %d results, failures %q", len(r), failures(r))
	}
	for _, x := range r {
		if x.Check == "haproxy" && x.Detail != "127.0.0.1:31414 reaches node1, the primary (same run_id)" {
			t.Errorf("%s: %q", x.Node, x.Detail)
		}
	}
	r = check(func(i int, s map[string]string) {
		switch i {
		case 1:
			s["haproxy"] = runID(1) // node2's HAProxy sends clients to node2, a replica
		case 2:
			s["haproxy"] = "Error: Connection reset by peer\n"
		}
	})
	if got, want := failures(r), "node2: haproxy, node3: haproxy"; got != want {
		t.Fatalf("failures %q, want %q", got, want)
	}
	details := map[string]string{}
	for _, x := range r {
		if x.Check == "haproxy" {
			details[x.Node] = x.Detail
		}
	}
	if want := "127.0.0.1:31414 reaches node2, not the primary node1"; details["node2"] != want {
		t.Errorf("node2: %q, want %q", details["node2"], want)
	}
	if want := "HAProxy at 127.0.0.1:31414 gives no Redis: Error: Connection reset by peer"; details["node3"] != want {
		t.Errorf("node3: %q, want %q", details["node3"], want)
	}
}

// The drill finds the primary by the structured role of the passing
// "redis" result, not by the words of its detail.
func TestPrimaryOfReadsRole(t *testing.T) {
	c, _ := newChecker(nil)
	r := c.Health(context.Background())
	if got := c.primaryOf(r); got != "node1" {
		t.Errorf("primaryOf = %q, want node1", got)
	}
	for i := range r {
		if r[i].Check == "redis" {
			r[i].Detail = "role:master (reworded)"
			r[i].role = ""
		}
	}
	r[1].role = "master" // a result that is not a redis one
	if got := c.primaryOf(r); got != "" {
		t.Errorf("primaryOf read %q from the text of the report", got)
	}
}
