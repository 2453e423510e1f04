package shares

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/modules"
	"hastack.dev/hastack/modules/keepalived"
)

// loadType1 loads testdata/type1 with extra (CUE in a second file of the
// package, unified with it).
func loadType1(t *testing.T, extra string) (*config.Config, *config.Cluster, engine.System) {
	t.Helper()
	return loadWith(t, "testdata/type1", extra)
}

func loadWith(t *testing.T, from, extra string) (*config.Config, *config.Cluster, engine.System) {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(from, "web.cue"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "web.cue"), src, 0o644)
	if extra != "" {
		os.WriteFile(filepath.Join(dir, "extra.cue"), []byte("package web\n\n"+extra+"\n"), 0o644)
	}
	return loadDir(t, dir)
}

// lbFiles renders and returns node's resource ids and its files' contents.
func lbFiles(t *testing.T, r *engine.Rendered, node string) ([]string, map[string]string) {
	t.Helper()
	var ids []string
	files := map[string]string{}
	for _, n := range r.Nodes {
		if n.Name != node {
			continue
		}
		for _, res := range n.Resources {
			ids = append(ids, res.ID)
			var s struct{ Path, Content string }
			json.Unmarshal(res.Spec, &s)
			if res.Kind == "file" {
				files[s.Path] = s.Content
			}
		}
	}
	slices.Sort(ids)
	return ids, files
}

func wantAll(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

// TestType1LoadBalancers: type 1's load balancers are nodes of their own
// after the app nodes, in three phases after the tier's (the last serial):
// keepalived BACKUP with nopreempt holding the VIP on both (the holder is
// nobody's config), HAProxy carrying HTTPS 443 to both app nodes with a
// TCP check (never /health_check), nginx stream hashing the client's
// address with one consistent hash for SSH on TCP and FASP on UDP 33001.
func TestType1LoadBalancers(t *testing.T) {
	cfg, cl, sys := loadType1(t, "")
	var names []string
	for _, n := range cl.Nodes {
		names = append(names, n.Name)
	}
	if got := strings.Join(names, " "); got != "web1 web2 lb1 lb2" || cl.Nodes[3].SSH.Port != 2222 {
		t.Fatalf("nodes %s (%+v), want web1 web2 lb1 lb2, lb2 on ssh port 2222", got, cl.Nodes)
	}
	r, err := engine.Render(cfg.Context, cl, sys, map[string]any{"active": "web1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Phases) != 9 || !strings.HasPrefix(r.Phases[6].Name, "load balancers:") || !r.Phases[8].Serial {
		t.Errorf("phases %+v: want the tier's six, then three of the load balancers, the last serial", r.Phases)
	}
	ids, files := lbFiles(t, r, "lb1")
	want := []string{"file:/etc/haproxy/haproxy.cfg", "file:/etc/keepalived/keepalived.conf", "file:/etc/nginx/nginx.conf", "package:frontend", "service:haproxy", "service:keepalived", "service:nginx"}
	if !slices.Equal(ids, want) {
		t.Errorf("lb1's resources %v, want %v", ids, want)
	}
	wantAll(t, "lb1's keepalived.conf", files["/etc/keepalived/keepalived.conf"],
		"# Written by hastack: the web tier's virtual IP (docs/shares.md).",
		"vrrp_instance shares_web {\n    state BACKUP\n    nopreempt\n", "priority 150", "virtual_router_id 51",
		"        10.0.0.10/24 dev eth0\n", "track_script {\n        https\n        transfer\n    }",
		"vrrp_script https {", "/dev/tcp/127.0.0.1/8404", "/dev/tcp/127.0.0.1/8405")
	ha := files["/etc/haproxy/haproxy.cfg"]
	wantAll(t, "lb1's haproxy.cfg", ha, "frontend https\n    bind :443\n", "backend https\n    balance roundrobin\n",
		"    default-server check inter 1000 fastinter 333 fall 3 rise 2\n", "    server web1 10.0.0.11:443\n", "    server web2 10.0.0.12:443\n")
	if strings.Contains(ha, "httpchk") || strings.Contains(ha, "health_check") {
		t.Errorf("a TCP health check renders an HTTP one:\n%s", ha)
	}
	ng := files["/etc/nginx/nginx.conf"]
	wantAll(t, "lb1's nginx.conf", ng, "    upstream shares_ssh {\n        hash $remote_addr consistent;\n        server 10.0.0.11:33001 max_fails=2 fail_timeout=10s;\n        server 10.0.0.12:33001",
		"    upstream shares_fasp {\n        hash $remote_addr consistent;\n        server 10.0.0.11:33001 max_fails=2 fail_timeout=10s;\n        server 10.0.0.12:33001",
		"        listen 33001;\n", "        listen 33001 udp;\n")
	if _, f2 := lbFiles(t, r, "lb2"); !strings.Contains(f2["/etc/keepalived/keepalived.conf"], "priority 100") {
		t.Errorf("lb2's keepalived.conf:\n%s", f2["/etc/keepalived/keepalived.conf"])
	}
	// The app nodes get nothing of the load balancers'.
	if aids, _ := lbFiles(t, r, "web1"); slices.Contains(aids, "service:keepalived") {
		t.Errorf("web1 runs keepalived: %v", aids)
	}
	// Both roles render the same load balancers: the active node is not
	// their input.
	r2, err := engine.Render(cfg.Context, cl, sys, map[string]any{"active": "web2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, f2 := lbFiles(t, r2, "lb1"); !maps(f2, files) {
		t.Error("lb1's files depend on the active node")
	}
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestType1HTTPCheckUnicastIPVS: an HTTP check GETs its path over TLS;
// unicast adverts name the peer; balancer "ipvs" renders keepalived's
// virtual server on one firewall mark for TCP and UDP 33001 instead of
// nginx (rendered only: the lab's kernel has no IPVS).
func TestType1HTTPCheckUnicastIPVS(t *testing.T) {
	cfg, cl, sys := loadType1(t, `webtiers: web: loadBalancer: {
	balancer: "ipvs"
	vrrp: {unicast: true, routerId: 61}
	healthCheck: {kind: "http", path: "/static/ok.html", interMilliseconds: 600, fall: 2}
}`)
	r, err := engine.Render(cfg.Context, cl, sys, map[string]any{"active": "web1"})
	if err != nil {
		t.Fatal(err)
	}
	ids, files := lbFiles(t, r, "lb2")
	if slices.Contains(ids, "service:nginx") || !slices.Contains(ids, "command:frontend-fwmark") {
		t.Errorf("ipvs: lb2's resources %v", ids)
	}
	wantAll(t, "lb2's haproxy.cfg", files["/etc/haproxy/haproxy.cfg"], "    option httpchk GET /static/ok.html\n    http-check expect status 200\n",
		"    default-server check check-ssl verify none inter 600 fastinter 200 fall 2 rise 2\n")
	wantAll(t, "lb2's keepalived.conf", files["/etc/keepalived/keepalived.conf"], "unicast_src_ip 10.0.0.22\n    unicast_peer {\n        10.0.0.21\n    }",
		"virtual_server fwmark 61 {", "lb_algo sh", "persistence_timeout 300", "real_server 10.0.0.11 33001 {", "real_server 10.0.0.12 33001 {")
	if strings.Contains(files["/etc/keepalived/keepalived.conf"], "vrrp_script transfer") {
		t.Error("the ipvs load balancer checks an nginx it does not run")
	}
}

// TestType2LoadBalancers: type 2's VIP carries HTTPS only, so its load
// balancers run keepalived and HAProxy, no transfer balancer.
func TestType2LoadBalancers(t *testing.T) {
	cfg, cl, sys := loadWith(t, "testdata/type2", `webtiers: console: loadBalancer: nodes: [{name: "lb1", ip: "10.0.0.21", priority: 150}, {name: "lb2", ip: "10.0.0.22", priority: 100}]`)
	r, err := engine.Render(cfg.Context, cl, sys, map[string]any{"active": "web1"})
	if err != nil {
		t.Fatal(err)
	}
	ids, files := lbFiles(t, r, "lb1")
	if want := []string{"file:/etc/haproxy/haproxy.cfg", "file:/etc/keepalived/keepalived.conf", "package:frontend", "service:haproxy", "service:keepalived"}; !slices.Equal(ids, want) {
		t.Errorf("type 2 lb1's resources %v, want %v", ids, want)
	}
	ka := files["/etc/keepalived/keepalived.conf"]
	if strings.Contains(ka, "vrrp_script transfer") || strings.Contains(ka, "        transfer\n") || strings.Contains(ka, "virtual_server") || strings.Contains(ka, "nginx") {
		t.Errorf("type 2's keepalived.conf balances transfers:\n%s", ka)
	}
	wantAll(t, "type 2 haproxy.cfg", files["/etc/haproxy/haproxy.cfg"], "option httpchk GET /static/ok.html")
}

// TestObserveVIP: the VIP's holder is read from the load balancers into
// the plan's header as live state (not an input: nothing rendered
// changes); a load balancer is asked only for its addresses.
func TestObserveVIP(t *testing.T) {
	_, _, sys := loadType1(t, "")
	if n := sys.Needs(engine.NodeSpec{Name: "lb1"}); len(n.Shared) != 1 || n.Shared[keepalived.VIPFact] == nil || len(n.Files) != 0 {
		t.Errorf("a load balancer is asked %+v", n)
	}
	for _, holder := range []string{"lb1", "lb2"} {
		facts := statusFacts("active=web1\nupdated=1\n", map[string][]string{"web1": {"mariadb"}})
		for _, b := range []string{"lb1", "lb2"} {
			var nf modules.NodeFacts
			nf.SetShared(keepalived.VIPFact, map[string]bool{"10.0.0.10": b == holder})
			facts[b] = &engine.Facts{Node: b, Shared: &nf}
		}
		obs, err := sys.Observe(facts)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(obs.Summary, "; VIP 10.0.0.10 on "+holder) || len(obs.Notes) != 0 {
			t.Errorf("holder %s: summary %q, notes %v", holder, obs.Summary, obs.Notes)
		}
		if _, ok := obs.Inputs["vip"]; ok || len(obs.Inputs) != 1 {
			t.Errorf("holder %s: the VIP's holder is an input: %v", holder, obs.Inputs)
		}
	}
}
