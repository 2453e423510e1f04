package check

import (
	"context"
	"strings"
	"testing"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/stacks/hsts"
)

// frontendChecker is testCluster behind lb1 and lb2, every node answering
// from sections (node → section → body).
func frontendChecker(sections map[string]map[string]string) *Checker {
	cl := testCluster()
	cl.Users.Transfer = []string{"xfer", "xfer2"}
	cl.Frontend = &hsts.Frontend{VIP: "10.0.0.9", Balancer: "nginx",
		LoadBalancers: []config.Node{{Name: "lb1", IP: "10.0.0.21"}, {Name: "lb2", IP: "10.0.0.22"}},
		TransferIDs:   map[string][2]int{"xfer": {3001, 3001}, "xfer2": {3002, 3003}}}
	hosts := map[string]host.Host{}
	for name, s := range sections {
		s["end"] = ""
		hosts[name] = &fakeNode{name: name, sections: s}
	}
	return &Checker{Cluster: cl, Hosts: hosts}
}

func frontendOK() map[string]map[string]string {
	conf := "  <server>\n    <db_type>ha_redis</db_type>\n  </server>\n"
	m := map[string]map[string]string{}
	for _, n := range []string{"node1", "node2", "node3"} {
		m[n] = map[string]string{"user0": "xfer:3001:3001\n", "user1": "xfer2:3002:3003\n", "server": conf}
	}
	stat := "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n" +
		"nodeapi,FRONTEND,,,0,1,4096,5,0,0,0,0,0,,,,,OPEN,\n" +
		"nodeapi,node1,0,0,0,1,,2,0,0,,0,,0,0,0,0,UP,1\n" +
		"nodeapi,node2,0,0,0,1,,2,0,0,,0,,0,0,0,0,UP,1\n" +
		"nodeapi,node3,0,0,0,1,,2,0,0,,0,,0,0,0,0,UP,1\n" +
		"nodeapi,BACKEND,0,0,0,1,410,5,0,0,0,0,,0,0,0,0,UP,3\n"
	m["lb1"] = map[string]string{"backends": stat, "addrs": "2: eth0    inet 10.0.0.21/24 scope global eth0\n2: eth0    inet 10.0.0.9/24 scope global secondary eth0\n", "active": "active\nactive\nactive\n"}
	m["lb2"] = map[string]string{"backends": stat, "addrs": "2: eth0    inet 10.0.0.22/24 scope global eth0\n", "active": "active\nactive\nactive\n"}
	return m
}

// The front end's check: one VIP holder, the load balancers' services,
// the transfer users' ids and aspera.conf equal on every node; each
// failure names what differs.
func TestFrontendCheck(t *testing.T) {
	r := frontendChecker(frontendOK()).Frontend(context.Background())
	var b strings.Builder
	r.Write(&b)
	if !r.OK() || !strings.Contains(b.String(), "VIP 10.0.0.9 on lb1") || len(r) != 9 || !strings.Contains(b.String(), "HAProxy has every node's Node API up: node1, node2, node3") {
		t.Fatalf("a healthy front end:\n%s", b.String())
	}
	for _, tc := range []struct {
		name   string
		break_ func(m map[string]map[string]string)
		failed string
		detail string
	}{
		{"two holders", func(m map[string]map[string]string) {
			m["lb2"]["addrs"] += "2: eth0    inet 10.0.0.9/24 scope global secondary eth0\n"
		}, "vip", "on lb1 and lb2 at once"},
		{"no holder", func(m map[string]map[string]string) { m["lb1"]["addrs"] = "" }, "vip", "no load balancer holds"},
		{"nginx down", func(m map[string]map[string]string) { m["lb2"]["active"] = "active\nactive\ninactive\n" }, "lb2: lb-services", "inactive"},
		{"other uid", func(m map[string]map[string]string) { m["node2"]["user1"] = "xfer2:3004:3003\n" }, "node2: transfer-ids", `xfer2 is "xfer2:3004:3003", want uid:gid 3002:3003`},
		{"missing user", func(m map[string]map[string]string) { m["node3"]["user0"] = "" }, "node3: transfer-ids", `xfer is ""`},
		{"a backend down", func(m map[string]map[string]string) {
			m["lb1"]["backends"] = strings.Replace(m["lb1"]["backends"], "nodeapi,node2,0,0,0,1,,2,0,0,,0,,0,0,0,0,UP", "nodeapi,node2,0,0,0,1,,2,0,0,,0,,0,0,0,0,DOWN", 1)
		}, "lb1: lb-backends", "not up: node2 down"},
		{"no stats", func(m map[string]map[string]string) {
			m["lb2"]["backends"] = "socat: connect: No such file or directory\n"
		}, "lb2: lb-backends", "node1 unknown, node2 unknown, node3 unknown"},
		{"aspera.conf differs", func(m map[string]map[string]string) { m["node3"]["server"] = "  <server>\n  </server>\n" }, "aspera.conf", "node1, node2 | node3"},
	} {
		m := frontendOK()
		tc.break_(m)
		r := frontendChecker(m).Frontend(context.Background())
		var b strings.Builder
		r.Write(&b)
		if r.OK() || strings.Join(r.Failed(), ",") != tc.failed || !strings.Contains(b.String(), tc.detail) {
			t.Errorf("%s: failed %v, want %s with %q:\n%s", tc.name, r.Failed(), tc.failed, tc.detail, b.String())
		}
	}
	if r := (&Checker{Cluster: testCluster()}).Frontend(context.Background()); r != nil {
		t.Errorf("a cluster without a front end: %v", r)
	}
}
