package lab

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

const testPW = "lab-test-pw"

// seedRedis writes a seed-style (003 steps 4-5, 7-8) aspera_31415.conf and
// sentinel_41415.conf on a node and aspera.conf's db_* keys for the
// Sentinel design, using the stand-ins as an admin would.
func seedRedis(l *Lab, n Node, primary string) string {
	replicaof := ""
	if n.IP != primary {
		replicaof = "replicaof " + primary + " 31415"
	}
	var hosts, ports []string
	for _, m := range l.Nodes {
		hosts = append(hosts, m.IP)
		ports = append(ports, "41415")
	}
	return fmt.Sprintf(`set -e
cat > /opt/aspera/etc/redis/aspera_31415.conf <<C
port 31415
dbfilename redis.31415.rdb
dir /opt/aspera/var
pidfile /opt/aspera/var/run/redis.31415.pid
requirepass %[1]s
masterauth %[1]s
save 60 10000
daemonize no
syslog-enabled yes
syslog-facility local2
bind %[2]s
aof-use-rdb-preamble no
# Not in the seed: start replicas without Redis 7's 5 s wait for more.
repl-diskless-sync-delay 0
%[3]s
C
cat > /opt/aspera/etc/redis/sentinel_41415.conf <<C
pidfile "/opt/aspera/var/run/redis_sentinel_41415.pid"
daemonize no
dir "/tmp"
port 41415
bind %[2]s
sentinel monitor myprimary %[4]s 31415 2
sentinel down-after-milliseconds myprimary 300
sentinel failover-timeout myprimary 1000
sentinel auth-pass myprimary %[1]s
requirepass %[1]s
C
chown asperadaemon:aspadmins /opt/aspera/etc/redis/sentinel_41415.conf
asconfigurator -x "set_server_data;db_type,ha_redis"
asconfigurator -x 'set_server_data;db_host,"%[5]s"'
asconfigurator -x 'set_server_data;db_port,"%[6]s"'
cp /opt/aspera/etc/redis/asperaredissentinel.service /lib/systemd/system/
echo -n %[1]s | askmscli -s redis-password
systemctl start asperaredisd asperaredissentinel
`, testPW, n.IP, replicaof, primary, strings.Join(hosts, ","), strings.Join(ports, ","))
}

func TestStandins(t *testing.T) {
	l := Start(t, 3)
	ctx := context.Background()
	for _, n := range l.Nodes {
		exec1(t, l, n.Name, seedRedis(l, n, l.Nodes[0].IP))
	}

	t.Run("redis answers another node", func(t *testing.T) {
		out := exec1(t, l, "node2", fmt.Sprintf("REDISCLI_AUTH=%s redis-cli -h %s -p 31415 PING", testPW, l.Nodes[0].IP))
		if strings.TrimSpace(out) != "PONG" {
			t.Errorf("PING node1 from node2: %q", out)
		}
		if out := exec1(t, l, "node1", "ps -o user= -C redis-server"); strings.TrimSpace(out) != "asperadaemon" {
			t.Errorf("redis-server runs as %q, want asperadaemon", out)
		}
	})

	t.Run("asnodeadmin through sentinel and replication", func(t *testing.T) {
		exec1(t, l, "node1", "asnodeadmin -au usr2 -p pass2 -x root")
		if out := exec1(t, l, "node3", "asnodeadmin -l"); !strings.Contains(out, "usr2") {
			t.Errorf("node3 does not list usr2:\n%s", out)
		}
		// The user reached node3's own Redis, a replica, by replication.
		out := exec1(t, l, "node3", fmt.Sprintf(`for i in $(seq 100); do
			[ "$(REDISCLI_AUTH=%s redis-cli -h %s -p 31415 HEXISTS aspera:node_users usr2)" = 1 ] && { echo replicated; break; }
			sleep 0.05; done`, testPW, l.Nodes[2].IP))
		if strings.TrimSpace(out) != "replicated" {
			t.Errorf("usr2 did not reach node3's replica in 5 s")
		}
		exec1(t, l, "node2", "asnodeadmin -du usr2")
		if out := exec1(t, l, "node1", "asnodeadmin -l"); strings.Contains(out, "usr2") {
			t.Errorf("usr2 still listed after delete:\n%s", out)
		}
	})

	t.Run("asconfigurator", func(t *testing.T) {
		out := exec1(t, l, "node1", `asconfigurator -x "set_server_data;db_primaryset,set1" &&
			asconfigurator -x "set_server_data;db_primaryset,set2" && asconfigurator -x get_server_data`)
		if !strings.Contains(out, "db_primaryset: set2") || strings.Contains(out, "set1") ||
			!strings.Contains(out, "db_host: "+l.Nodes[0].IP+","+l.Nodes[1].IP) {
			t.Errorf("get_server_data after replace:\n%s", out)
		}
	})

	t.Run("askmscli", func(t *testing.T) {
		out := exec1(t, l, "node1", `askmscli -i -u xfer && stat -c '%U %a' /home/xfer/.aspera/local_keystore
			askmscli -i -u nosuchuser; echo rc=$?`)
		if !strings.Contains(out, "xfer 600") || !strings.Contains(out, "rc=1") {
			t.Errorf("askmscli:\n%s", out)
		}
	})

	t.Run("systemctl", func(t *testing.T) {
		out := exec1(t, l, "node2", `systemctl is-active asperaredisd; echo rc=$?
			systemctl is-active asperanoded; echo rc=$?
			systemctl is-enabled asperaredissentinel; echo rc=$?
			systemctl enable asperaredissentinel >/dev/null; systemctl is-enabled asperaredissentinel; echo rc=$?
			systemctl start nosuch; echo rc=$?
			systemctl start asperanoded asperarund && systemctl stop asperanoded asperarund asperaredisd; echo rc=$?
			systemctl is-active asperaredisd; echo rc=$?`)
		want := "active\nrc=0\ninactive\nrc=3\ndisabled\nrc=1\nenabled\nrc=0\n" +
			"Failed to start nosuch.service: Unit nosuch.service not found.\nrc=5\nrc=0\ninactive\nrc=3\n"
		if out != want {
			t.Errorf("got:\n%s\nwant:\n%s", out, want)
		}
		if _, err := l.Exec(ctx, "node2", "pgrep", "-x", "redis-server"); err == nil {
			t.Errorf("redis-server still runs after stop")
		}
	})

	// A first apply starts four units and runs askmscli for every user on
	// every node at once: the stand-ins must not cost the lab more than the
	// daemons they start. The node's pid namespace counts the processes.
	t.Run("stand-ins start few processes", func(t *testing.T) {
		out := exec1(t, l, "node3", `pids() { a=$(cat /proc/sys/kernel/ns_last_pid); "$@" >/dev/null; b=$(cat /proc/sys/kernel/ns_last_pid); echo $((b - a - 1)); }
			systemctl stop asperanoded asperarund
			pids systemctl start asperanoded asperarund
			pids askmscli -i -u xfer
			pids asconfigurator -x "set_server_data;db_primaryset,set3"
			systemctl stop asperanoded asperarund`)
		var start, keystore, conf int
		if _, err := fmt.Sscan(out, &start, &keystore, &conf); err != nil {
			t.Fatalf("%q: %v", out, err)
		}
		// Two daemons (setsid, setpriv, the script, its sleep), one id, one
		// sleep of the crash check; chown, chmod, chown, mv; chmod, chown, mv.
		if start > 10 || keystore > 6 || conf > 6 {
			t.Errorf("processes: %d for a start of two units (want at most 10), %d for askmscli -i (6), %d for asconfigurator (6)", start, keystore, conf)
		}
	})

	// The unit file and its drop-ins, read as systemd reads them: the last
	// value wins, drop-ins in name order, an empty ExecReload= clears the
	// list; one start of several units checks each, and a unit that dies
	// at once fails the start with its log, the others still start.
	t.Run("systemctl unit files", func(t *testing.T) {
		out := exec1(t, l, "node3", `d=/etc/systemd/system/asperarund.service.d; mkdir -p $d
			printf '[Service]\nUMask=0077\nUser=xfer\nExecReload=/bin/false\n' >$d/a.conf
			printf '[Service]\nExecReload=\nExecReload=/bin/echo reloaded $MAINPID\n  User=xfer2\n' >$d/b.conf
			systemctl start asperarund asperanoded; echo rc=$?
			pid=$(cat /run/lab-systemd/asperarund.service.pid)
			ps -o user= -p $pid; grep ^Umask: /proc/$pid/status
			systemctl reload asperarund; echo rc=$?; tail -n 1 /var/log/lab/asperarund.service.log | sed "s/$pid/PID/"
			systemctl stop asperarund asperanoded
			printf '[Service]\nExecStart=/bin/false\n' >$d/c.conf
			systemctl start asperanoded asperarund 2>&1 | head -n 1; echo rc=${PIPESTATUS[0]}
			systemctl is-active asperanoded asperarund; systemctl stop asperanoded; rm -r $d`)
		want := "rc=0\nxfer2\nUmask:\t0077\nrc=0\nreloaded PID\n" +
			"Job for asperarund.service failed because the control process exited with error code (status 1).\nrc=1\nactive\ninactive\n"
		if out != want {
			t.Errorf("got:\n%s\nwant:\n%s", out, want)
		}
	})
}
