package hsts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/modules"
	"hastack.dev/hastack/modules/keepalived"
)

// frontendCluster is a 3-node cluster behind two load balancers; extra
// goes into its frontend struct.
func frontendCluster(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	src := `package cluster

import "hastack.dev/schema/hsts"

clusters: transfer: hsts.#Cluster & {
	nodes: [
		{name: "node1", ip: "10.0.0.11"},
		{name: "node2", ip: "10.0.0.12"},
		{name: "node3", ip: "10.0.0.13"},
	]
	primary: "node1"
	users: transfer: ["xfer"]
	users: ids: xfer: {uid: 3001, gid: 3002}, users: docroot: "/mnt/shared/aspera"
	secrets: hostKey: env: "HASTACK_TEST_HOSTKEY"
	frontend: {
		vip:     "10.0.0.2"
		hostKey: "hostKey"
		loadBalancers: [
			{name: "lb1", ip: "10.0.0.21", priority: 150},
			{name: "lb2", ip: "10.0.0.22", priority: 100},
		]
		` + extra + `
	}
}
`
	if err := os.WriteFile(filepath.Join(dir, "cluster.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// spec is the spec of resource id on node n, as JSON.
func spec(t *testing.T, r *engine.Rendered, node, id string) map[string]any {
	t.Helper()
	for _, n := range r.Nodes {
		if n.Name != node {
			continue
		}
		for _, res := range n.Resources {
			if res.ID == id {
				var m map[string]any
				if err := json.Unmarshal(res.Spec, &m); err != nil {
					t.Fatal(err)
				}
				m["_phase"] = float64(res.Phase)
				return m
			}
		}
	}
	t.Fatalf("%s has no %s", node, id)
	return nil
}

// The front end renders the load balancers as nodes after the HSTS nodes,
// in three phases of their own after the HSTS phases: keepalived BACKUP
// with nopreempt on both (the VIP's holder is nobody's config), HAProxy
// checking GET /ping with inter/fall/rise, nginx hashing the client address
// for TCP and UDP 33001; the HSTS nodes get the transfer users with their
// fixed ids before the keystores.
func TestRenderFrontend(t *testing.T) {
	cfg := loadExample(t, frontendCluster(t, `vrrp: unicast: true
		nodeAPI: {interMilliseconds: 500, fall: 4}`))
	cl := cfg.Clusters[0]
	r, err := testRender(t, cfg, cl, "node1", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range r.Nodes {
		names = append(names, n.Name)
	}
	if got := strings.Join(names, " "); got != "node1 node2 node3 lb1 lb2" {
		t.Fatalf("nodes %s, want the HSTS nodes then lb1 lb2", got)
	}
	last := len(r.Phases) - 1
	if !strings.HasPrefix(r.Phases[last-2].Name, "front end:") || !r.Phases[last].Serial {
		t.Errorf("the last three phases are not the front end's, serial at the end: %+v", r.Phases[last-2:])
	}
	ka := spec(t, r, "lb1", "file:/etc/keepalived/keepalived.conf")
	if int(ka["_phase"].(float64)) != last-1 {
		t.Errorf("keepalived.conf in phase %v, want %d", ka["_phase"], last-1)
	}
	conf := ka["content"].(string)
	for _, want := range []string{"/dev/tcp/127.0.0.1/8404", "/dev/tcp/127.0.0.1/8405", "state BACKUP\n    nopreempt", "priority 150", "virtual_router_id 51", "unicast_src_ip 10.0.0.21", "unicast_peer {\n        10.0.0.22\n    }", "10.0.0.2/24 dev eth0", "track_script {\n        nodeapi\n        transfer"} {
		if !strings.Contains(conf, want) {
			t.Errorf("lb1's keepalived.conf lacks %q:\n%s", want, conf)
		}
	}
	if c2 := spec(t, r, "lb2", "file:/etc/keepalived/keepalived.conf")["content"].(string); !strings.Contains(c2, "priority 100") || !strings.Contains(c2, "state BACKUP") {
		t.Errorf("lb2's keepalived.conf:\n%s", c2)
	}
	ha := spec(t, r, "lb1", "file:/etc/haproxy/haproxy.cfg")["content"].(string)
	for _, want := range []string{"bind :9092", "option httpchk GET /ping", "check check-ssl verify none inter 500 fastinter 166 fall 4 rise 2", "timeout check 166ms", "timeout connect 166ms", "stats socket /run/haproxy/hastack-frontend.sock mode 600 level user", "bind 127.0.0.1:8404", "server node1 10.0.0.11:9092", "server node3 10.0.0.13:9092", "option redispatch 1"} {
		if !strings.Contains(ha, want) {
			t.Errorf("haproxy.cfg lacks %q:\n%s", want, ha)
		}
	}
	ng := spec(t, r, "lb2", "file:/etc/nginx/nginx.conf")["content"].(string)
	if strings.Count(ng, "hash $remote_addr consistent;") != 2 || !strings.Contains(ng, "listen 33001 udp;") || !strings.Contains(ng, "listen 33001;") || !strings.Contains(ng, "listen 127.0.0.1:8405;") || strings.Count(ng, "server 10.0.0.12:33001 max_fails=2") != 2 {
		t.Errorf("nginx.conf does not hash TCP and UDP 33001 over the same servers:\n%s", ng)
	}
	for _, id := range []string{"service:haproxy", "service:nginx", "service:keepalived"} {
		if s := spec(t, r, "lb1", id); s["reload"] != true || int(s["_phase"].(float64)) != last {
			t.Errorf("%s: %v, want a reload in the last phase", id, s)
		}
	}
	for _, n := range []string{"node1", "node2", "node3"} {
		g, u := spec(t, r, n, "group:xfer"), spec(t, r, n, "user:xfer")
		if g["gid"] != 3002.0 || u["uid"] != 3001.0 || u["group"] != "xfer" || g["_phase"] != 0.0 || u["_phase"] != 1.0 {
			t.Errorf("%s: transfer user %v, group %v", n, u, g)
		}
	}
	for _, n := range r.Nodes[3:] {
		for _, res := range n.Resources {
			if res.Phase < last-2 {
				t.Errorf("%s: %s in HSTS phase %d", n.Name, res.ID, res.Phase)
			}
		}
	}
}

// balancer "ipvs": keepalived's fwmark virtual server with source hashing
// and persistence instead of nginx, and the mangle marks for TCP and UDP.
func TestRenderFrontendIPVS(t *testing.T) {
	cfg := loadExample(t, frontendCluster(t, `transfer: balancer: "ipvs"`))
	r, err := testRender(t, cfg, cfg.Clusters[0], "node1", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	conf := spec(t, r, "lb1", "file:/etc/keepalived/keepalived.conf")["content"].(string)
	for _, want := range []string{"virtual_server fwmark 51 {", "lb_algo sh", "persistence_timeout 300", "real_server 10.0.0.13 33001 {"} {
		if !strings.Contains(conf, want) {
			t.Errorf("keepalived.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "vrrp_script transfer") {
		t.Error("the ipvs front end checks an nginx it does not run")
	}
	mark := spec(t, r, "lb1", "command:frontend-fwmark")["cmd"].(string)
	if !strings.Contains(mark, "-p tcp --dport 33001 -j MARK --set-mark 51") || !strings.Contains(mark, "-p udp --dport 33001 -j MARK --set-mark 51") {
		t.Errorf("fwmark command: %s", mark)
	}
	for _, res := range r.Nodes[3].Resources {
		if strings.Contains(res.ID, "nginx") {
			t.Errorf("ipvs front end renders %s", res.ID)
		}
	}
}

// Without a front end nothing changes: no load balancers, no extra phases.
func TestRenderNoFrontend(t *testing.T) {
	cfg := loadExample(t, "../../examples/three-node")
	r, err := testRender(t, cfg, cfg.Clusters[0], "node1", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range r.Phases {
		if strings.HasPrefix(p.Name, "front end") {
			t.Errorf("phase %q without a front end", p.Name)
		}
	}
	if len(r.Nodes) != 3 {
		t.Errorf("%d nodes", len(r.Nodes))
	}
}

// The engine connects to the load balancers (config's nodes), while every
// Redis rule counts the HSTS nodes only; decoding twice adds them once.
func TestDecodeFrontend(t *testing.T) {
	cfg := loadExample(t, frontendCluster(t, `loadBalancers: [{name: "lb1", ip: "10.0.0.21", priority: 150}, {name: "lb2", ip: "10.0.0.22", priority: 100, ssh: {port: 2222, user: "admin"}}]`))
	cl := cfg.Clusters[0]
	c := decoded(t, cl)
	c2 := decoded(t, cl)
	if len(cl.Nodes) != 5 || len(c.Nodes) != 3 || len(c2.Nodes) != 3 {
		t.Fatalf("config has %d nodes, the HSTS cluster %d and %d; want 5, 3, 3", len(cl.Nodes), len(c.Nodes), len(c2.Nodes))
	}
	lb2 := cl.Nodes[4]
	if lb2.Name != "lb2" || lb2.SSH.Host != "10.0.0.22" || lb2.SSH.Port != 2222 || !lb2.SSH.PortSet || lb2.SSH.User != "admin" || cl.Nodes[3].SSH.PortSet {
		t.Errorf("load balancers as config nodes: %+v %+v", cl.Nodes[3], lb2)
	}
	if !c.IsLoadBalancer("lb1") || c.IsLoadBalancer("node1") || c.Frontend.VIP != "10.0.0.2" || c.Frontend.NodeAPIPort != 9092 || c.Frontend.FASPPort != 33001 {
		t.Errorf("frontend: %+v", c.Frontend)
	}
	up := openSys(t, cl).Guess()["redisUp"].(map[string]bool)
	if len(up) != 3 || up["lb1"] {
		t.Errorf("Guess counts the load balancers as Redis nodes: %v", up)
	}
}

// The VIP's holder is read from the load balancers into the plan's header;
// none or two holders are notes; a load balancer is asked only for its
// addresses, never for a Sentinel.
func TestObserveFrontend(t *testing.T) {
	cfg := loadExample(t, frontendCluster(t, ""))
	cl := cfg.Clusters[0]
	s := &system{c: decoded(t, cl)}
	if n := s.Needs(engine.NodeSpec{Name: "lb1", IP: "10.0.0.21"}); len(n.Shared) != 1 || n.Shared[keepalived.VIPFact] == nil {
		t.Errorf("a load balancer is asked %v", n.Shared)
	}
	lbFacts := func(held map[string]bool) map[string]*engine.Facts {
		facts := map[string]*engine.Facts{}
		for lb, h := range held {
			var nf modules.NodeFacts
			nf.SetShared(keepalived.VIPFact, map[string]bool{"10.0.0.2": h, "10.0.0.21": lb == "lb1"})
			facts[lb] = &engine.Facts{Node: lb, Shared: &nf}
		}
		return facts
	}
	for _, tc := range []struct {
		held    map[string]bool
		summary string
		note    string
	}{
		{map[string]bool{"lb1": false, "lb2": true}, "; VIP 10.0.0.2 on lb2", ""},
		{map[string]bool{"lb1": false, "lb2": false}, "; VIP 10.0.0.2 held by no load balancer", "no load balancer holds the VIP"},
		{map[string]bool{"lb1": true, "lb2": true}, "; VIP 10.0.0.2 on lb1 and lb2", "at once"},
		{map[string]bool{"lb1": true}, "; VIP 10.0.0.2 on lb1", "not read whether lb2"},
	} {
		var obs engine.Observation
		s.observeFrontend(lbFacts(tc.held), &obs)
		notes := strings.Join(obs.Notes, "\n")
		if obs.Summary != tc.summary || (tc.note == "") != (notes == "") || !strings.Contains(notes, tc.note) {
			t.Errorf("%v: summary %q, notes %q; want %q, a note with %q", tc.held, obs.Summary, notes, tc.summary, tc.note)
		}
	}
}
