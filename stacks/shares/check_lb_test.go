package shares

import (
	"strings"
	"testing"

	"hastack.dev/hastack/engine/config"
)

// TestLBProblems: HAProxy's view (canned `show stat`) with node2 DOWN on
// one load balancer fails naming it; both UP on both, one VIP holder, passes.
func TestLBProblems(t *testing.T) {
	tier := &Tier{Architecture: "type2", VIP: "10.0.0.10",
		App:           []config.Node{{Name: "web1"}, {Name: "web2"}},
		LoadBalancers: []config.Node{{Name: "lb1"}, {Name: "lb2"}}}
	stat := func(s2 string) string {
		return "# pxname,svname,qcur,status\nhttps,FRONTEND,0,OPEN\nhttps,web1,0,UP\nhttps,web2,0," + s2 + "\nhttps,BACKEND,0,UP\n"
	}
	views := map[string]lbView{
		"lb1": {Addrs: "2: eth0    inet 10.0.0.21/24 brd x\n2: eth0    inet 10.0.0.10/24 scope global\n", Active: "active\nactive\n", Stats: stat("UP")},
		"lb2": {Addrs: "2: eth0    inet 10.0.0.22/24\n", Active: "active\nactive\n", Stats: stat("DOWN")},
	}
	var b strings.Builder
	p := tier.LBProblems(views, &b)
	if len(p) != 1 || p[0] != "load balancer lb2: HAProxy's view: web2 DOWN not UP in backend https" {
		t.Errorf("problems %q", p)
	}
	if !strings.Contains(b.String(), "VIP 10.0.0.10 on lb1") {
		t.Errorf("report %q", b.String())
	}
	views["lb2"] = lbView{Addrs: views["lb2"].Addrs, Active: "active\nactive\n", Stats: stat("UP")}
	b.Reset()
	if p := tier.LBProblems(views, &b); len(p) != 0 {
		t.Errorf("all UP: problems %q", p)
	}
}
