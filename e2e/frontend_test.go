package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"hastack.dev/hastack/internal/lab"
)

// The front end's test cluster: node1-3 are HSTS nodes sharing one HA
// Redis (design 003), node4 and node5 the load balancers.
const (
	feNodeUser = "feadmin"
	feNodePass = "fe-Node-Pass1"
	feLBs      = 2
	feDocroot  = "/mnt/shared/aspera" // the lab's shared storage in every node
)

// TestFrontend is issue 11's proof on the lab with Debian's keepalived,
// HAProxy and nginx in front of three HSTS nodes: seed 000's scenario
// through the VIP (a transfer started through it is found by every query
// through it, and the queries reach every node), a bearer token of 002's
// options made on one node working on every node, TCP and UDP 33001 of each
// client reaching one node, the active load balancer killed (the VIP
// moves; the time without it measured), an HSTS node's link cut (out of
// rotation within inter × fall), nothing to plan after the VIP and a Redis
// failover, and last the seed's "problem": the same scenario against nodes
// that each keep their own Redis fails.
func TestFrontend(t *testing.T) {
	t.Parallel()
	l, vip, c := frontendLab(t, "/usr/bin/ssh-keygen", "/usr/bin/ssh-keyscan")
	keys := newFrontendKeys(t)
	writeFrontendConfigKeys(t, l, c.dir, vip, keys)
	// The host key file is planned without its content: no line of the
	// key (nor the token key) in the plan.
	if out := c.must(0, "plan"); !strings.Contains(out, "(secret content, no diff shown)") || keys.leaked(out) {
		t.Error("the plan does not mask the transfer host key file, or shows a key")
	}
	if out := c.must(0, "apply", "-auto-approve"); keys.leaked(out) {
		t.Error("apply printed a key")
	}
	if out := c.must(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
		t.Fatal("the plan after apply is not empty")
	}
	// check proves the identical configs and the VIP (docs/frontend.md).
	if out := c.must(0, "check", "-wait", "30s"); !strings.Contains(out, "vip: VIP "+vip+" on node4") ||
		strings.Count(out, "transfer-ids: 2 transfer users with the config's uid and gid") != 3 ||
		!strings.Contains(out, "aspera.conf: the <server> and <default> sections of aspera.conf are the same on the 3 nodes") ||
		strings.Count(out, "lb-backends: HAProxy has every node's Node API up: node1, node2, node3") != 2 ||
		strings.Count(out, "host-key: the transfer host key is the secret transferHostKey's: "+keys.fingerprint) != 3 ||
		!strings.Contains(out, "host-keys: one transfer host key on 3 of 3 nodes: "+keys.fingerprint) ||
		strings.Count(out, "token-key: token_encryption_key is the secret tokenKey's") != 3 || keys.leaked(out) ||
		!strings.Contains(out, "docroot: xfer (uid ") || strings.Count(out, "docroot: reads node1's probe under "+feDocroot+": one storage") != 2 {
		t.Error("check does not show the front end's VIP holder, the transfer users' ids, one aspera.conf, one host key and token key, or one docroot")
	}
	// A node whose docroot is a directory of its own (/mnt is node-private in the lab; a mount missing,
	// another storage): check fails, naming it; back on the shared
	// storage it passes, and no probe is left behind.
	if out, err := c.exec("node3", "sh", "-c", "mkdir -p /mnt/local-docroot && chown xfer /mnt/local-docroot && mount --bind /mnt/local-docroot "+feDocroot); err != nil {
		t.Fatalf("node3: %v %s", err, out)
	}
	if out := c.must(1, "check"); !strings.Contains(out, "FAIL  node3  docroot: does not read node1's probe under "+feDocroot) {
		t.Error("check does not name node3, whose docroot is a local directory")
	}
	if out, err := c.exec("node3", "umount", feDocroot); err != nil {
		t.Fatalf("node3: %v %s", err, out)
	}
	c.must(0, "check")
	if left, _ := os.ReadDir(filepath.Join(l.SharedDir(), "aspera")); len(left) != 0 {
		t.Errorf("check left %v in the docroot", left)
	}
	// TCP 33001 is each node's transfer sshd (the stack's, with the shared
	// host key); UDP 33001 stands in for FASP: a responder that answers
	// the node's name. xfer may log in with the test's client key.
	for _, n := range l.Nodes[:3] {
		script := fmt.Sprintf(`set -e
install -d -o xfer -g xfer -m 0700 /home/xfer/.ssh
printf '%%s\n' %q >/home/xfer/.ssh/authorized_keys
chown xfer:xfer /home/xfer/.ssh/authorized_keys; chmod 0600 /home/xfer/.ssh/authorized_keys
setsid socat UDP-RECVFROM:33001,fork SYSTEM:hostname </dev/null >/dev/null 2>&1 &
sleep 0.3`, keys.clientPub)
		if out, err := c.exec(n.Name, "bash", "-c", script); err != nil {
			t.Fatalf("%s: %v %s", n.Name, err, out)
		}
	}
	api := newVIPClient(l, vip)
	if holder := waitHolder(t, l, vip, "node4", 20*time.Second); holder != "node4" {
		t.Fatalf("the VIP is on %s, want node4 (priority 150)", holder)
	}
	api.waitUp(t, 20*time.Second)
	// The holder is read before planning, and shown, not planned.
	if out := c.must(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "; VIP "+vip+" on node4") {
		t.Error("the plan's header does not say node4 holds the VIP")
	}

	// A Node API user, added on node1: in the shared Redis, so every node
	// knows it (003 step 13's asnodeadmin).
	if out, err := c.exec("node1", "/opt/aspera/bin/asnodeadmin", "-au", feNodeUser, "-p", feNodePass, "-x", "xfer"); err != nil {
		t.Fatalf("asnodeadmin: %v %s", err, out)
	}

	t.Run("seed 000 through the VIP", func(t *testing.T) {
		id := api.startTransfer(t)
		st := api.query(t, id, 50)
		t.Logf("50 queries of transfer %s through the VIP: %s", id, st)
		if st.notFound != 0 || st.other != 0 {
			t.Errorf("%d queries said the transfer does not exist, %d failed otherwise", st.notFound, st.other)
		}
		for _, n := range []string{"node1", "node2", "node3"} {
			if st.byNode[n] == 0 {
				t.Errorf("no query reached %s: %v", n, st.byNode)
			}
		}
	})

	// 002's options: scope-role user, a 2048-bit key, expiring in two
	// minutes. Made on node2; used through the VIP on every node.
	exp := time.Now().UTC().Add(2 * time.Minute)
	token := api.bearerToken(t, c, exp)
	t.Run("bearer token through the VIP", func(t *testing.T) {
		byNode := map[string]int{}
		for i := 0; i < 30; i++ {
			code, node, body := api.do(t, "GET", "/info", "", token.header)
			if code != 200 || !strings.Contains(body, `"scope_role":"user"`) {
				t.Fatalf("GET /info with the token: %d %s", code, body)
			}
			byNode[node]++
		}
		t.Logf("30 GET /info with the token: %v", byNode)
		if len(byNode) != 3 {
			t.Errorf("the token was not used on every node: %v", byNode)
		}
		if code, _, body := api.do(t, "POST", "/access_keys", `{"id":"fe-ak2","secret":"x"}`, token.header); code != 403 {
			t.Errorf("a user-scope token created an access key: %d %s", code, body)
		}
	})

	// Every backend presents the one host key: on its own address, and
	// through the VIP (20 ssh-keyscans; from one client address they reach
	// one node, so the 16 clients below, spread over the nodes, log in
	// with known_hosts holding only that key).
	t.Run("one transfer host key through the VIP", func(t *testing.T) {
		for _, n := range l.Nodes[:3] {
			if got := keyscan(t, l, n.IP); len(got) != 1 || got[0] != keys.fingerprint {
				t.Errorf("%s's transfer sshd presents %v, want %s", n.Name, got, keys.fingerprint)
			}
		}
		seen := map[string]int{}
		for i := 0; i < 20; i++ {
			for _, fp := range keyscan(t, l, vip) {
				seen[fp]++
			}
		}
		t.Logf("20 ssh-keyscan -p 33001 %s: %v (the secret's key: %s)", vip, seen, keys.fingerprint)
		if len(seen) != 1 || seen[keys.fingerprint] != 20 {
			t.Errorf("ssh-keyscan through the VIP saw %v, want only %s", seen, keys.fingerprint)
		}
	})

	t.Run("TCP and UDP 33001 sticky per client", func(t *testing.T) {
		stickinessSSH(t, c, l, vip, keys)
	})

	// A key changed by hand on one node: check fails naming it, the plan
	// shows the file (masked), apply puts the shared key back. ssh-keygen
	// leaves ssh_host_key.pub beside it, which apply does not touch: check
	// must read the key sshd serves, not that file.
	t.Run("a node with another host key", func(t *testing.T) {
		c := c.in(t)
		if out, err := c.exec("node2", "bash", "-c", "rm -f /etc/ssh/hastack-transfer/ssh_host_key && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/hastack-transfer/ssh_host_key && systemctl reload hastack-transfer-sshd"); err != nil {
			t.Fatalf("node2: %v %s", err, out)
		}
		if got := keyscan(t, l, l.Nodes[1].IP); len(got) != 1 || got[0] == keys.fingerprint {
			t.Fatalf("node2 still presents %v", got)
		}
		code, out := c.hastack("check")
		if code == 0 || !strings.Contains(out, "FAIL  node2  host-key: /etc/ssh/hastack-transfer/ssh_host_key is SHA256:") ||
			!strings.Contains(out, "FAIL  -      host-keys: the nodes serve different transfer host keys") || strings.Contains(out, "FAIL  node1") || strings.Contains(out, "FAIL  node3") {
			t.Errorf("check with another key on node2 exited %d", code)
		}
		if out := c.must(0, "plan"); !strings.Contains(out, "(secret content, no diff shown)") || keys.leaked(out) {
			t.Error("the plan does not show node2's key file, masked")
		}
		c.must(0, "apply", "-auto-approve")
		if got := keyscan(t, l, l.Nodes[1].IP); len(got) != 1 || got[0] != keys.fingerprint {
			t.Errorf("after apply node2 presents %v, want %s", got, keys.fingerprint)
		}
		if out := c.must(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
			t.Error("the plan after apply is not empty")
		}
		c.must(0, "check", "-wait", "30s")
	})

	// The active load balancer dies (its link goes down): the VIP moves to
	// node5, and a client sees no VIP for about 3 × advert_int.
	t.Run("kill the active load balancer", func(t *testing.T) {
		c := c.in(t)
		down := api.outage(t, func() {
			if _, err := c.exec("node4", "ip", "link", "set", "eth0", "down"); err != nil {
				t.Fatal(err)
			}
		}, 20*time.Second)
		t.Logf("node4 killed: GET /ping through the VIP failed for %v (advert_int 1 s: expect about 3.5 s)", down.Round(10*time.Millisecond))
		if down > 6*time.Second {
			t.Errorf("the VIP was gone for %v, want about 3 × advert_int", down)
		}
		if h := waitHolder(t, l, vip, "node5", 10*time.Second); h != "node5" {
			t.Fatalf("the VIP is on %s after node4 died", h)
		}
		// node4 comes back (its keepalived starts again as after a
		// reboot): nopreempt keeps the VIP on node5.
		for _, argv := range [][]string{{"systemctl", "stop", "keepalived"}, {"ip", "link", "set", "eth0", "up"}, {"systemctl", "start", "keepalived"}} {
			if out, err := c.exec("node4", argv...); err != nil {
				t.Fatalf("node4: %v: %v %s", argv, err, out)
			}
		}
		time.Sleep(5 * time.Second)
		if h := waitHolder(t, l, vip, "node5", 10*time.Second); h != "node5" {
			t.Errorf("the VIP moved back to %s when node4 returned", h)
		}
		if out := c.must(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") || !strings.Contains(out, "; VIP "+vip+" on node5") {
			t.Error("the VIP's new holder shows as drift, or the plan's header does not name it")
		}
	})

	// An HSTS node's link goes down: HAProxy takes it out within
	// inter × fall (1 s × 3; #FrontendHAProxy); a connection to it
	// meanwhile is redispatched to another node after 1 s.
	t.Run("an HSTS node dies", func(t *testing.T) {
		c := c.in(t)
		start := time.Now()
		if _, err := c.exec("node3", "ip", "link", "set", "eth0", "down"); err != nil {
			t.Fatal(err)
		}
		var fails []time.Duration
		var late int
		byNode := map[string]int{}
		for time.Since(start) < 10*time.Second {
			sent := time.Since(start) // a failure counts from when it was asked
			code, node, body := api.doTimeout("GET", "/info", "", basic(), 3*time.Second)
			if code != 200 {
				t.Logf("sent %v after node3 died: %d %s", sent.Round(10*time.Millisecond), code, body)
				fails = append(fails, sent)
			} else {
				byNode[node]++
				if node == "node3" {
					late++
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		last := time.Duration(0)
		if len(fails) > 0 {
			last = fails[len(fails)-1]
		}
		t.Logf("node3's link down: %d failed requests through the VIP, the last sent %v after; answers %v", len(fails), last.Round(10*time.Millisecond), byNode)
		if last > 3*time.Second {
			t.Errorf("requests still failed %v after node3 died, want at most inter × fall (3 s)", last)
		}
		if late > 0 {
			t.Errorf("%d answers came from node3 after its link went down", late)
		}
		if _, err := c.exec("node3", "ip", "link", "set", "eth0", "up"); err != nil {
			t.Fatal(err)
		}
		// rise 2: back in rotation after two good checks.
		deadline := time.Now().Add(15 * time.Second)
		for {
			if _, node, _ := api.doTimeout("GET", "/info", "", basic(), 3*time.Second); node == "node3" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("node3 is not back in rotation 15 s after its link came back")
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Its Sentinel and Redis rejoin too.
		c.must(0, "check", "-wait", "60s")
	})

	t.Run("plan after a Redis failover", func(t *testing.T) {
		c := c.in(t)
		d := c.failover()
		t.Logf("Redis failover: no primary for %v", d)
		c.must(0, "check", "-wait", "30s")
		if out := c.must(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
			t.Error("the plan after the VIP and Redis failovers is not empty")
		}
		// The shared Redis moved; the transfers are still found.
		id := api.startTransfer(t)
		if st := api.query(t, id, 20); st.notFound != 0 || st.other != 0 {
			t.Errorf("after the Redis failover: %s", st)
		}
	})

	t.Run("bearer token expired", func(t *testing.T) {
		time.Sleep(time.Until(exp.Add(time.Second)))
		for i := 0; i < 6; i++ {
			if code, node, body := api.do(t, "GET", "/info", "", token.header); code != 401 || !strings.Contains(body, "expired") {
				t.Errorf("%s accepted the token after it expired: %d %s", node, code, body)
			}
		}
	})

	// Seed 000's "problem": every node keeps its own Redis. The same
	// scenario through the same VIP now finds the transfer only on the node
	// that started it: the scenario's check fails.
	t.Run("seed 000's problem: a Redis per node", func(t *testing.T) {
		c := c.in(t)
		for _, n := range []string{"node1", "node2", "node3"} {
			script := fmt.Sprintf(`set -e
redis-server --port 31416 --bind 127.0.0.1 --save '' --requirepass %q --daemonize yes >/dev/null
/opt/aspera/bin/asconfigurator -x 'set_server_data;db_type,redis' >/dev/null
/opt/aspera/bin/asconfigurator -x 'set_server_data;db_host,127.0.0.1' >/dev/null
/opt/aspera/bin/asconfigurator -x 'set_server_data;db_port,31416' >/dev/null
/opt/aspera/bin/asnodeadmin -au %s -p %s -x xfer >/dev/null
systemctl restart asperanoded`, testPassword, feNodeUser, feNodePass)
			if out, err := c.exec(n, "bash", "-c", script); err != nil {
				t.Fatalf("%s: %v %s", n, err, out)
			}
		}
		api.waitUp(t, 20*time.Second)
		id := api.startTransfer(t)
		st := api.query(t, id, 50)
		t.Logf("a Redis per node: 50 queries through the VIP: %s", st)
		if st.notFound == 0 {
			t.Errorf("with a Redis per node no query said the transfer does not exist: the scenario cannot fail")
		}
	})
}

// frontendKeys are the test's secrets: the transfer host key (a file, as
// ssh-keygen writes it) and the token key, and the client key xfer logs
// in with.
type frontendKeys struct {
	hostKeyFile, tokenFile string
	hostKey, token         string
	hostPub, fingerprint   string // "ssh-ed25519 AAAA...", "SHA256:..."
	clientKey, clientPub   string // the client's key file, its public line
}

func newFrontendKeys(t *testing.T) *frontendKeys {
	t.Helper()
	dir := t.TempDir()
	k := &frontendKeys{hostKeyFile: filepath.Join(dir, "transfer_host_key"), tokenFile: filepath.Join(dir, "token_key"),
		clientKey: filepath.Join(dir, "client_key"), token: "e2e-token-key-5f0c7a9d31b2"}
	for _, f := range []string{k.hostKeyFile, k.clientKey} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hastack-e2e", "-f", f).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v %s", err, out)
		}
	}
	if err := os.WriteFile(k.tokenFile, []byte(k.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	k.hostKey, k.hostPub, k.clientPub = read(k.hostKeyFile), read(k.hostKeyFile+".pub"), read(k.clientKey+".pub")
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.hostPub))
	if err != nil {
		t.Fatal(err)
	}
	k.fingerprint = ssh.FingerprintSHA256(pub)
	return k
}

// leaked reports whether out holds the token key or a line of the host
// key (its PEM armour aside).
func (k *frontendKeys) leaked(out string) bool {
	if strings.Contains(out, k.token) {
		return true
	}
	for _, l := range strings.Split(k.hostKey, "\n") {
		if l = strings.TrimSpace(l); !strings.HasPrefix(l, "-----") && strings.Contains(out, l) {
			return true
		}
	}
	return false
}

// keyscan is the fingerprints ssh-keyscan sees on addr's TCP 33001,
// trying for up to 5 s: right after a reload sshd re-executes itself and
// briefly does not listen.
func keyscan(t *testing.T, l *lab.Lab, addr string) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var out []byte
	var err error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err = l.ExecController(ctx, "ssh-keyscan", "-T", "3", "-p", "33001", addr)
		cancel()
		if err == nil && len(strings.TrimSpace(string(out))) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("ssh-keyscan %s: %v %s", addr, err, out)
	}
	var fps []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(f[1] + " " + f[2]))
		if err != nil {
			t.Fatalf("ssh-keyscan %s: %q: %v", addr, line, err)
		}
		fps = append(fps, ssh.FingerprintSHA256(pub))
	}
	return fps
}

// writeFrontendConfig writes the cluster: node1-3 behind node4 and node5,
// with fresh keys.
func writeFrontendConfig(t *testing.T, l *lab.Lab, dir, vip string) {
	t.Helper()
	writeFrontendConfigKeys(t, l, dir, vip, newFrontendKeys(t))
}

// frontendLab starts a lab of three HSTS nodes and feLBs load balancers
// and returns it, the VIP and a cluster for a config in a temporary
// directory; it skips without the front end's programs or bins.
func frontendLab(t *testing.T, bins ...string) (*lab.Lab, string, *cluster) {
	t.Helper()
	for _, bin := range append([]string{"/usr/sbin/keepalived", "/usr/sbin/haproxy", "/usr/sbin/nginx", "/usr/bin/socat"}, bins...) {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("needs %s (tools/deps.sh)", bin)
		}
	}
	l := lab.Start(t, 3+feLBs)
	vip, err := l.SpareIP(1)
	if err != nil {
		t.Fatal(err)
	}
	return l, vip, &cluster{t: t, lab: l, dir: t.TempDir()}
}

// writeFrontendConfigKeys is writeFrontendConfig with keys as its secrets.
func writeFrontendConfigKeys(t *testing.T, l *lab.Lab, dir, vip string, keys *frontendKeys) {
	t.Helper()
	u := l.Users
	var b strings.Builder
	fmt.Fprintf(&b, "package cluster\n\nimport \"hastack.dev/schema/hsts\"\n\nclusters: %q: hsts.#Cluster & {\n\tnodes: [\n", l.Name)
	for _, n := range l.Nodes[:3] {
		fmt.Fprintf(&b, "\t\t{name: %q, ip: %q},\n", n.Name, n.IP)
	}
	fmt.Fprintf(&b, "\t]\n\tprimary: \"node1\"\n\tsecret: env: \"HASTACK_REDIS_PASSWORD\"\n\t%s\n", debugExtra)
	fmt.Fprintf(&b, "\tusers: transfer: [\"xfer\", \"xfer2\"]\n\tusers: ids: {xfer: {uid: %d, gid: %d}, xfer2: {uid: %d, gid: %d}}\n",
		u.XferUID, u.XferUID, u.Xfer2UID, u.Xfer2UID)
	// The docroot: the lab's shared storage, xfer's to write (hastack
	// creates nothing under it, docs/frontend.md).
	root := filepath.Join(l.SharedDir(), "aspera")
	if err := os.MkdirAll(root, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(root, u.XferUID, u.XferUID); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "\tusers: docroot: %q\n", feDocroot)
	fmt.Fprintf(&b, "\tsecrets: {\n\t\ttransferHostKey: file: %q\n\t\ttokenKey: file: %q\n\t}\n\tbearerToken: encryptionKey: \"tokenKey\"\n", keys.hostKeyFile, keys.tokenFile)
	fmt.Fprintf(&b, "\tfrontend: {\n\t\tvip: %q\n\t\thostKey: \"transferHostKey\"\n\t\tloadBalancers: [\n", vip)
	for i, n := range l.Nodes[3:] {
		fmt.Fprintf(&b, "\t\t\t{name: %q, ip: %q, priority: %d},\n", n.Name, n.IP, 150-50*i)
	}
	b.WriteString("\t\t]\n\t}\n}\n")
	if err := os.WriteFile(filepath.Join(dir, "cluster.cue"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitHolder waits up to max for want to hold vip alone and returns the
// holder it saw last ("" for none or several).
func waitHolder(t *testing.T, l *lab.Lab, vip, want string, max time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(max)
	for {
		var on []string
		for _, n := range l.Nodes[3:] {
			out, err := l.Exec(context.Background(), n.Name, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), " "+vip+"/") {
				on = append(on, n.Name)
			}
		}
		got := ""
		if len(on) == 1 {
			got = on[0]
		}
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// vipClient talks to the Node API through the VIP from the controller,
// a new connection per request (so HAProxy balances each one).
type vipClient struct {
	vip string
	hc  *http.Client
}

func newVIPClient(l *lab.Lab, vip string) *vipClient {
	tr := &http.Transport{
		DialContext:       l.DialContext,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // each node's certificate is self-signed
		DisableKeepAlives: true,
	}
	return &vipClient{vip: vip, hc: &http.Client{Transport: tr}}
}

func basic() map[string]string {
	return map[string]string{"Authorization": "Basic " + basicToken(feNodeUser, feNodePass)}
}

func basicToken(u, p string) string {
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.SetBasicAuth(u, p)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// doTimeout sends one request; code 0 is a request that got no answer.
func (a *vipClient) doTimeout(method, path, body string, hdr map[string]string, timeout time.Duration) (int, string, string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "https://"+net.JoinHostPort(a.vip, "9092")+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err.Error()
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, "", err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Lab-Node"), string(b)
}

func (a *vipClient) do(t *testing.T, method, path, body string, hdr map[string]string) (int, string, string) {
	t.Helper()
	code, node, b := a.doTimeout(method, path, body, hdr, 5*time.Second)
	if code == 0 {
		t.Fatalf("%s %s through the VIP: %s", method, path, b)
	}
	return code, node, b
}

// waitUp waits until every HSTS node answers through the VIP.
func (a *vipClient) waitUp(t *testing.T, max time.Duration) {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.Now().Add(max)
	for len(seen) < 3 {
		if code, node, _ := a.doTimeout("GET", "/ping", "", nil, 2*time.Second); code == 200 {
			seen[node] = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %v answered /ping through the VIP in %v", seen, max)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (a *vipClient) startTransfer(t *testing.T) string {
	t.Helper()
	code, node, body := a.do(t, "POST", "/ops/transfers", `{"direction":"receive","remote_host":"client","paths":[{"source":"big.bin"}]}`, basic())
	var tr struct{ ID string }
	if code != 201 || json.Unmarshal([]byte(body), &tr) != nil || tr.ID == "" {
		t.Fatalf("start a transfer through the VIP: %d %s", code, body)
	}
	t.Logf("transfer %s started through the VIP on %s", tr.ID, node)
	return tr.ID
}

type queryStats struct {
	ok, notFound, other int
	byNode              map[string]int
}

func (s queryStats) String() string {
	var ns []string
	for n, k := range s.byNode {
		ns = append(ns, fmt.Sprintf("%s %d", n, k))
	}
	sort.Strings(ns)
	return fmt.Sprintf("%d found, %d \"does not exist\", %d other; answered by %s", s.ok, s.notFound, s.other, strings.Join(ns, ", "))
}

// query asks for transfer id n times through the VIP.
func (a *vipClient) query(t *testing.T, id string, n int) queryStats {
	t.Helper()
	st := queryStats{byNode: map[string]int{}}
	for i := 0; i < n; i++ {
		code, node, body := a.do(t, "GET", "/ops/transfers/"+id, "", basic())
		st.byNode[node]++
		switch {
		case code == 200 && strings.Contains(body, id):
			st.ok++
		case code == 404 && strings.Contains(body, "does not exist"):
			st.notFound++
		default:
			st.other++
			t.Logf("query %d: %d %s", i, code, body)
		}
	}
	return st
}

// outage runs fault and returns how long GET /ping through the VIP then
// failed (polled every 50 ms, 300 ms per try), until max.
func (a *vipClient) outage(t *testing.T, fault func(), max time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	fault()
	var firstFail, lastFail time.Time
	for time.Since(start) < max {
		code, _, _ := a.doTimeout("GET", "/ping", "", nil, 300*time.Millisecond)
		now := time.Now()
		if code != 200 {
			if firstFail.IsZero() {
				firstFail = now
			}
			lastFail = now
		} else if !firstFail.IsZero() && now.Sub(lastFail) > time.Second {
			return lastFail.Sub(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the VIP did not answer again within %v", max)
	return 0
}

type bearer struct{ header map[string]string }

// bearerToken makes access key fe-ak1 through the VIP and a token for it
// on node2 with 002's options.
func (a *vipClient) bearerToken(t *testing.T, c *cluster, exp time.Time) bearer {
	t.Helper()
	if code, _, body := a.do(t, "POST", "/access_keys", `{"id":"fe-ak1","secret":"fe-ak1-secret","storage":{"type":"local","path":"/home/xfer"}}`, basic()); code != 201 {
		t.Fatalf("create an access key through the VIP: %d %s", code, body)
	}
	out, err := c.exec("node2", "/opt/aspera/bin/asnodeadmin", "--bearer-create", "--access-key", "fe-ak1", "--user-id", "fe-user",
		"--scope-role", "user", "--token-key-length", "2048", "--expires-at", exp.Format("2006-01-02T15:04:05.000Z"), "--token-key-path", "/root/fe-ak1.pem")
	if err != nil {
		t.Fatalf("asnodeadmin --bearer-create: %v", err)
	}
	return bearer{header: map[string]string{"Authorization": "Bearer " + strings.TrimSpace(out), "X-Aspera-AccessKey": "fe-ak1"}}
}

// stickiness checks, for 16 client source addresses, that TCP and UDP
// 33001 through the VIP reach the same node (TCP: xfer logs in to the
// transfer sshd and runs hostname, with known_hosts holding only the shared
// host key; UDP: the responder TestFrontend starts says which), and that
// the clients spread over the nodes.
// With keys nil, TCP 33001 is a responder too that answers the node's name
// (TestSharesType1).
func stickiness(t *testing.T, c *cluster, l *lab.Lab, vip string) { stickinessSSH(t, c, l, vip, nil) }

func stickinessSSH(t *testing.T, c *cluster, l *lab.Lab, vip string, keys *frontendKeys) {
	prefix := l.ControllerIP[:strings.LastIndexByte(l.ControllerIP, '.')+1]
	spread := map[string]int{}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if keys != nil {
		if err := os.WriteFile(kh, []byte("["+vip+"]:33001 "+keys.hostPub+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 16; i++ {
		src := fmt.Sprintf("%s%d", prefix, 100+i)
		if _, err := l.ExecController(context.Background(), "ip", "addr", "add", src+"/32", "dev", "br0"); err != nil {
			t.Fatal(err)
		}
		// TCP: ssh, which refuses any other host key. UDP: send a
		// datagram, read the answer.
		ask := func(proto string) string {
			// The responder: -u, the client sends nothing (a client that
			// closes its side at once has nginx drop the answer).
			cmd := fmt.Sprintf("socat -u -T 2 TCP:%s:33001,bind=%s -", vip, src)
			if keys != nil {
				cmd = fmt.Sprintf("ssh -b %s -p 33001 -i %s -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=5 -o LogLevel=ERROR xfer@%s hostname", src, keys.clientKey, kh, vip)
			}
			if proto == "UDP" {
				cmd = fmt.Sprintf("echo x | socat -t 1 -T 2 - UDP:%s:33001,bind=%s", vip, src)
			}
			out, err := l.ExecController(context.Background(), "sh", "-c", cmd)
			if err != nil {
				t.Fatalf("%s from %s: %v", proto, src, err)
			}
			return strings.TrimSpace(string(out))
		}
		tcp1, udp, tcp2 := ask("TCP"), ask("UDP"), ask("TCP")
		if tcp1 == "" || tcp1 != udp || tcp1 != tcp2 {
			logs, _ := c.exec("node4", "tail", "-n", "5", "/var/log/nginx/error.log")
			t.Errorf("client %s: TCP reached %q, UDP %q, TCP again %q; node4's nginx:\n%s", src, tcp1, udp, tcp2, logs)
		}
		spread[tcp1]++
	}
	t.Logf("16 clients' TCP and UDP 33001 through the VIP: %v", spread)
	if len(spread) < 2 {
		t.Errorf("all clients reached one node: %v", spread)
	}
}
