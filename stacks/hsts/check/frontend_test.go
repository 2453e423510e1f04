package check

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"strings"
	"testing"

	"cuelang.org/go/cue/cuecontext"
	"golang.org/x/crypto/ssh"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
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

// testHostKey is a fresh ed25519 private key in OpenSSH format and its
// fingerprint.
func testHostKey(t *testing.T) (string, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(pem.EncodeToMemory(blk))), ssh.FingerprintSHA256(signer.PublicKey())
}

// The transfer host key and the token key (seed 000's identical configs):
// every node's key file has the configured secret's fingerprint, and its
// aspera.conf the secret's token_encryption_key (in <default>, where
// set_node_data writes it); a node that differs is
// named, and neither key is printed.
func TestFrontendCheckKeys(t *testing.T) {
	key, fp := testHostKey(t)
	_, otherFP := testHostKey(t)
	const token = "tok-<&>-8d1e55aa90c3"
	withKeys := func(m map[string]map[string]string) *Checker {
		c := frontendChecker(m)
		c.Cluster.Cluster.Value = cuecontext.New().CompileString(`frontend: hostKey: "hostKey"
bearerToken: encryptionKey: "tokenKey"`)
		c.Secret = secret.Secret{}.WithNamed("hostKey", secret.New(key)).WithNamed("tokenKey", secret.New(token))
		return c
	}
	ok := func() map[string]map[string]string {
		m := frontendOK()
		for _, n := range []string{"node1", "node2", "node3"} {
			m[n]["hostkey"] = "256 " + fp + " root@node (ED25519)\n"
			m[n]["default"] = "<default>\n    <authorization>\n        <token>\n            <encryption_key>tok-&lt;&amp;&gt;-8d1e55aa90c3</encryption_key>\n        </token>\n    </authorization>\n</default>\n"
		}
		return m
	}
	r := withKeys(ok()).Frontend(context.Background())
	var b strings.Builder
	r.Write(&b)
	if !r.OK() || strings.Count(b.String(), "host-key: the transfer host key is the secret hostKey's: "+fp) != 3 ||
		!strings.Contains(b.String(), "host-keys: one transfer host key on 3 of 3 nodes: "+fp) ||
		strings.Count(b.String(), "token-key: token_encryption_key is the secret tokenKey's") != 3 {
		t.Fatalf("identical keys:\n%s", b.String())
	}
	for _, tc := range []struct {
		name   string
		break_ func(m map[string]map[string]string)
		failed string
		detail string
	}{
		{"another key on node2", func(m map[string]map[string]string) {
			m["node2"]["hostkey"] = "256 " + otherFP + " root@node2 (ED25519)\n"
		}, "node2: host-key,host-keys", "is " + otherFP + ", not the secret hostKey's " + fp},
		{"no key on node3", func(m map[string]map[string]string) {
			m["node3"]["hostkey"] = "/etc/ssh/hastack-transfer/ssh_host_key: No such file or directory\n"
		}, "node3: host-key,host-keys", "one transfer host key on 2 of 3 nodes"},
		{"another token key on node1", func(m map[string]map[string]string) {
			m["node1"]["default"] = "<default>\n    <authorization>\n        <token>\n            <encryption_key>tok-other-8d1e55aa90c3</encryption_key>\n        </token>\n    </authorization>\n</default>\n"
		}, "node1: token-key,aspera.conf", "token_encryption_key is not the secret tokenKey's"},
		{"no token key on node3", func(m map[string]map[string]string) {
			m["node3"]["default"] = "<default>\n</default>\n"
		}, "node3: token-key,aspera.conf", "aspera.conf has no token_encryption_key"},
		// Where 78f56eb's asconf put it: set_server_data's <server>, which
		// is not where Aspera's transfers read the global token key.
		{"the token key in <server> on node2", func(m map[string]map[string]string) {
			m["node2"]["default"] = "<default>\n</default>\n"
			m["node2"]["server"] = "  <server>\n    <token_encryption_key>tok-&lt;&amp;&gt;-8d1e55aa90c3</token_encryption_key>\n  </server>\n"
		}, "node2: token-key,aspera.conf", "aspera.conf has no token_encryption_key"},
	} {
		m := ok()
		tc.break_(m)
		r := withKeys(m).Frontend(context.Background())
		var b strings.Builder
		r.Write(&b)
		if r.OK() || strings.Join(r.Failed(), ",") != tc.failed || !strings.Contains(b.String(), tc.detail) {
			t.Errorf("%s: failed %v, want %s with %q:\n%s", tc.name, r.Failed(), tc.failed, tc.detail, b.String())
		}
		for _, v := range append(strings.Split(key, "\n")[1:3], "tok-", "8d1e55aa90c3") {
			if strings.Contains(b.String(), v) {
				t.Errorf("%s: the check printed a key: %q", tc.name, v)
			}
		}
	}
	// A secret that is no private key is a failure that quotes nothing.
	c := withKeys(ok())
	c.Secret = c.Secret.WithNamed("hostKey", secret.New("not-a-key-8d1e55aa90c3"))
	r = c.Frontend(context.Background())
	b.Reset()
	r.Write(&b)
	if r.OK() || !strings.Contains(b.String(), "the secret hostKey is not an unencrypted OpenSSH private key") || strings.Contains(b.String(), "not-a-key") {
		t.Errorf("a host key secret that is no key:\n%s", b.String())
	}
}
