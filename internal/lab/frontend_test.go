package lab

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestKeepalivedVIP answers issue 11's lab questions with Debian's real
// keepalived on two lab nodes: does VRRP reach the other namespace over the
// lab bridge (multicast, and unicast peers), does keepalived add the virtual
// IP to the node's eth0 as root in its namespace, does the controller reach
// the node through it, and how long is the VIP gone when its holder's link
// drops (expected: about 3 × advert_int).
func TestKeepalivedVIP(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/keepalived"); err != nil {
		t.Skip("needs Debian's keepalived (tools/deps.sh)")
	}
	l := Start(t, 2)
	vip, err := l.SpareIP(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, unicast := range []bool{false, true} {
		t.Run(map[bool]string{false: "multicast", true: "unicast"}[unicast], func(t *testing.T) {
			for i, n := range l.Nodes {
				conf := keepalivedConf(l, n, vip, 150-50*i, unicast)
				// Unicast: multicast is dropped, as many clouds do, so
				// only the unicast peers can elect one holder.
				block := ""
				if unicast {
					block = "iptables -I OUTPUT -d 224.0.0.0/4 -j DROP; "
				}
				exec1(t, l, n.Name, "mkdir -p /etc/keepalived && cat >/etc/keepalived/keepalived.conf <<'EOF'\n"+conf+"EOF\n"+
					block+"ip link set eth0 up; systemctl restart keepalived")
			}
			t.Cleanup(func() {
				for _, n := range l.Nodes {
					l.Exec(context.Background(), n.Name, "sh", "-c", "ip link set eth0 up; systemctl stop keepalived; iptables -F OUTPUT")
				}
			})
			holder := waitVIP(t, l, vip, 15*time.Second)
			if holder != "node1" {
				t.Fatalf("the VIP is on %s, want node1 (priority 150)", holder)
			}
			// The controller reaches node1's sshd through the VIP.
			if got := exec1(t, l, "node1", "hostname"); got != "node1\n" {
				t.Fatal(got)
			}
			dialVIP(t, l, vip)

			// node1's link drops: node2 stops hearing adverts and takes over.
			start := time.Now()
			exec1(t, l, "node1", "ip link set eth0 down")
			for {
				if hasAddr(t, l, "node2", vip) {
					break
				}
				if time.Since(start) > 15*time.Second {
					t.Fatalf("node2 did not take the VIP in 15 s; its keepalived log:\n%s", exec1(t, l, "node2", "tail -n 20 /var/log/lab/keepalived.service.log"))
				}
				time.Sleep(50 * time.Millisecond)
			}
			took := time.Since(start)
			dialVIP(t, l, vip)
			t.Logf("VIP %s moved node1 → node2 %v after node1's link went down (advert_int 1)", vip, took.Round(10*time.Millisecond))
			// 3 adverts and the skew (256-priority)/256 s: about 3.6 s.
			if took < 2*time.Second || took > 6*time.Second {
				t.Errorf("takeover took %v, want about 3 × advert_int (3-4 s)", took)
			}
		})
	}
}

// keepalivedConf is one VRRP instance holding vip, every node BACKUP so the
// priorities elect the holder, with the other nodes as unicast peers when
// unicast is set.
func keepalivedConf(l *Lab, n Node, vip string, prio int, unicast bool) string {
	var peers strings.Builder
	if unicast {
		fmt.Fprintf(&peers, "    unicast_src_ip %s\n    unicast_peer {\n", n.IP)
		for _, p := range l.Nodes {
			if p.Name != n.Name {
				fmt.Fprintf(&peers, "        %s\n", p.IP)
			}
		}
		peers.WriteString("    }\n")
	}
	return fmt.Sprintf(`global_defs {
    router_id %s
}
vrrp_instance lab {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
%s    virtual_ipaddress {
        %s/%d dev eth0
    }
}
`, n.Name, prio, peers.String(), vip, l.Prefix)
}

// waitVIP waits until exactly one node has held vip for 4 s (a backup
// that hears no adverts takes over after 3 × advert_int: a second holder
// would show by then) and returns it.
func waitVIP(t *testing.T, l *Lab, vip string, max time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(max)
	var since time.Time
	last := ""
	for {
		var on []string
		for _, n := range l.Nodes {
			if hasAddr(t, l, n.Name, vip) {
				on = append(on, n.Name)
			}
		}
		if len(on) != 1 || on[0] != last {
			last, since = "", time.Now()
			if len(on) == 1 {
				last = on[0]
			}
		}
		if last != "" && time.Since(since) >= 4*time.Second {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("VIP %s is on %v after %v; node1's keepalived log:\n%s", vip, on, max, exec1(t, l, "node1", "tail -n 20 /var/log/lab/keepalived.service.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func hasAddr(t *testing.T, l *Lab, node, ip string) bool {
	t.Helper()
	return strings.Contains(exec1(t, l, node, "ip -4 -o addr show dev eth0"), " "+ip+"/")
}

func dialVIP(t *testing.T, l *Lab, vip string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := l.DialContext(ctx, "tcp", vip+":22")
	if err != nil {
		t.Fatalf("dial the VIP from the controller: %v", err)
	}
	c.Close()
}
