package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"hastack.dev/hastack/internal/lab"
)

// TestSharesType1 is issue 12's type 1 ("redirect all traffic") on the
// lab: node1 and node2 are the app nodes (sharesConfig), node4 and node5
// the load balancers hastack sets up (keepalived with the VIP, HAProxy for
// HTTPS 443 with a TCP check, nginx stream for SSH TCP and FASP UDP 33001),
// the same places as TestFrontend's so its helpers apply (node3 is not part
// of the tier). Applied from fresh; an empty plan; 001's services placed
// by its location column and the load balancers' services, listed per
// node; HTTPS through the VIP reaching both app nodes; TCP and UDP 33001
// of each of 16 client addresses reaching one node.
func TestSharesType1(t *testing.T) {
	t.Parallel()
	l, c, vip := sharesLBTier(t, "type1", "/usr/bin/socat")

	// Every node runs exactly its part: 001's placement on the app nodes
	// (node1 ACM's active node), the load balancers' three services on
	// node4 and node5, nothing of either on node3.
	lbUnits := []string{"haproxy", "keepalived", "nginx"}
	sharesPlacement(t, l, map[string][]string{
		"node1": append(slices.Clone(sharesBoth), sharesActiveOnly...),
		"node2": sharesBoth,
		"node3": nil,
		"node4": lbUnits,
		"node5": lbUnits,
	})
	// The VIP: on node4 (priority 150), read before planning and shown in
	// the plan's header, never planned.
	if holder := waitHolder(t, l, vip, "node4", 20*time.Second); holder != "node4" {
		t.Fatalf("the VIP is on %q, want node4 (priority 150)", holder)
	}
	if out := c.must(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "; VIP "+vip+" on node4") {
		t.Error("the plan's header does not say node4 holds the VIP")
	}
	if t.Failed() {
		t.FailNow()
	}

	t.Run("HTTPS through the VIP", func(t *testing.T) {
		byNode := sharesHTTPS(t, l, vip, 20)
		t.Logf("20 HTTPS requests through the VIP: %v", byNode)
		if byNode["node1"] == 0 || byNode["node2"] == 0 || byNode["node1"]+byNode["node2"] != 20 {
			t.Errorf("HTTPS through the VIP reached %v, want node1 and node2 only, both", byNode)
		}
	})

	// What answers on 33001 of each app node (TCP and UDP): its name, as
	// in TestFrontend (the stack renders no transfer sshd or ascp).
	for _, n := range l.Nodes[:2] {
		script := `setsid socat TCP-LISTEN:33001,fork,reuseaddr SYSTEM:hostname </dev/null >/dev/null 2>&1 &
setsid socat UDP-RECVFROM:33001,fork SYSTEM:hostname </dev/null >/dev/null 2>&1 &
sleep 0.3`
		if out, err := c.exec(n.Name, "bash", "-c", script); err != nil {
			t.Fatalf("%s: %v %s", n.Name, err, out)
		}
	}
	// Both responders answer on the node's own address before any client
	// goes through the VIP: a connection nginx sends to a node not yet
	// listening goes on to the other node, and the client would look split.
	for _, n := range l.Nodes[:2] {
		deadline := time.Now().Add(10 * time.Second)
		for {
			tcp, _ := l.ExecController(t.Context(), "sh", "-c", fmt.Sprintf("socat -u -T 1 TCP:%s:33001 -", n.IP))
			udp, _ := l.ExecController(t.Context(), "sh", "-c", fmt.Sprintf("echo x | socat -t 1 -T 1 - UDP:%s:33001", n.IP))
			if strings.TrimSpace(string(tcp)) == n.Name && strings.TrimSpace(string(udp)) == n.Name {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's responders on 33001 do not answer: TCP %q, UDP %q", n.Name, tcp, udp)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Run("SSH and FASP stick to one node", func(t *testing.T) { stickiness(t, c, l, vip) })

	t.Run("IPVS", func(t *testing.T) {
		if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
			t.Skip("the kernel has no IPVS (/proc/net/ip_vs): balancer \"ipvs\" is rendered only (stacks/shares TestType1HTTPCheckUnicastIPVS)")
		}
		t.Skip("the kernel has IPVS, but the lab does not route the nodes' replies back through the load balancers (lb_kind NAT): not exercised")
	})
	if !t.Run("power cut of the active node", func(t *testing.T) { sharesPowerOff(t, c, vip) }) {
		return
	}
	// node2 is ACM's active node now.
	t.Run("failover drill", func(t *testing.T) { sharesFailover(t, l, c.dir, "node2", "node1", true) })
}

// sharesLBTier applies an arch web tier with hastack's load balancers
// (sharesLoadBalancers) from fresh to a lab of five and checks that the
// plan after it is empty and for ACM's node1; it skips without the
// Debian programs the tier needs, and bins.
func sharesLBTier(t *testing.T, arch string, bins ...string) (*lab.Lab, *cluster, string) {
	t.Helper()
	for _, bin := range append([]string{"/usr/sbin/nginx", "/usr/sbin/mariadbd", "/usr/sbin/cron", "/usr/sbin/keepalived", "/usr/sbin/haproxy"}, bins...) {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("needs %s (tools/deps.sh)", bin)
		}
	}
	l := lab.Start(t, 3+feLBs)
	dir := sharesConfig(t, l, arch)
	vip, _ := l.SpareIP(1) // sharesConfig's VIP
	sharesLoadBalancers(t, l, dir)
	c := &cluster{t: t, lab: l, dir: dir}
	c.must(0, "vet")
	c.must(0, "apply", "-auto-approve")
	if out := c.must(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") || !strings.Contains(out, "active node1 (named by ACM)") {
		t.Fatal("the plan after apply is not empty, or not for ACM's node1")
	}
	return l, c, vip
}

// sharesLoadBalancers adds the lab's last two nodes to the config in dir
// as the tier's load balancers (node4 priority 150, node5 100), in a
// second file of its package.
func sharesLoadBalancers(t *testing.T, l *lab.Lab, dir string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("package web\n\nwebtiers: web: loadBalancer: nodes: [\n")
	for i, n := range l.Nodes[3:] {
		fmt.Fprintf(&b, "\t{name: %q, ip: %q, priority: %d},\n", n.Name, n.IP, 150-50*i)
	}
	b.WriteString("]\n")
	if err := os.WriteFile(filepath.Join(dir, "lb.cue"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// sharesPlacement lists which of the tier's and the load balancers' units
// run on each node of want, and fails unless exactly want's do.
func sharesPlacement(t *testing.T, l *lab.Lab, want map[string][]string) {
	t.Helper()
	all := append(append(slices.Clone(sharesBoth), sharesActiveOnly...), "haproxy", "keepalived", "nsd")
	for _, node := range slices.Sorted(maps.Keys(want)) {
		var got []string
		for _, u := range all {
			if b, _ := l.Exec(t.Context(), node, "systemctl", "is-active", u); strings.TrimSpace(string(b)) == "active" && !slices.Contains(got, u) {
				got = append(got, u)
			}
		}
		slices.Sort(got)
		w := slices.Sorted(slices.Values(want[node]))
		t.Logf("%s runs %v", node, got)
		if !slices.Equal(got, w) {
			t.Errorf("%s runs %v, want %v", node, got, w)
		}
	}
}

// TestSharesType2LB is type 2 ("web traffic only") with hastack's load
// balancers: keepalived and HAProxy on node4 and node5 carry HTTPS 443
// only (no nginx stream: transfers go to the nodes' own addresses, named
// by node3's NSD). Applied from fresh, an empty plan, the units placed,
// check reading both load balancers' view, HTTPS through the VIP reaching
// both app nodes, and nothing on the VIP's 33001.
func TestSharesType2LB(t *testing.T) {
	t.Parallel()
	l, c, vip := sharesLBTier(t, "type2", "/usr/sbin/nsd")
	lbUnits := []string{"haproxy", "keepalived"}
	sharesPlacement(t, l, map[string][]string{
		"node1": append(slices.Clone(sharesBoth), sharesActiveOnly...),
		"node2": sharesBoth,
		"node3": {"nsd"},
		"node4": lbUnits,
		"node5": lbUnits,
	})
	out := c.must(0, "check", "-wait", "30s")
	for _, want := range []string{
		"load balancer node4: keepalived, haproxy active; HAProxy's view: node1, node2 UP",
		"load balancer node5: keepalived, haproxy active; HAProxy's view: node1, node2 UP",
		"VIP " + vip + " on node4",
		"name server node3: " + sharesFQDN + " first in",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check does not say %q", want)
		}
	}
	byNode := sharesHTTPS(t, l, vip, 20)
	t.Logf("20 HTTPS requests through the VIP: %v", byNode)
	if byNode["node1"] == 0 || byNode["node2"] == 0 || byNode["node1"]+byNode["node2"] != 20 {
		t.Errorf("HTTPS through the VIP reached %v, want node1 and node2 only, both", byNode)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if conn, err := l.DialContext(ctx, "tcp", net.JoinHostPort(vip, "33001")); err == nil {
		conn.Close()
		t.Error("the VIP takes TCP 33001: type 2's load balancers carry HTTPS only")
	}
}

// sharesHTTPS sends n HTTPS GETs through the VIP on 443 from the
// controller, a new connection each (HAProxy balances connections), and
// counts the app nodes that answered (the site's X-Node header).
func sharesHTTPS(t *testing.T, l *lab.Lab, vip string, n int) map[string]int {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext:       l.DialContext,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // each node's certificate is self-signed
		DisableKeepAlives: true,
	}}
	byNode := map[string]int{}
	for i := 0; i < n; i++ {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", "https://"+net.JoinHostPort(vip, "443")+"/", nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET / through the VIP: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		node := resp.Header.Get("X-Node")
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != node {
			t.Errorf("GET / through the VIP: %d %q from %q", resp.StatusCode, body, node)
		}
		byNode[node]++
	}
	return byNode
}
