package hsts

import (
	"strings"
	"testing"
)

// With a front end every HSTS node gets the transfer sshd serving the
// shared host key (the placeholder of frontend.hostKey's secret, 0600
// root), on transfer.sshPort, reloaded when the key or its config change;
// with bearerToken.encryptionKey aspera.conf gets token_encryption_key as
// that secret's placeholder, and users.docroot as the global <absolute>,
// both in the node data section (set_node_data). The load balancers get
// none of it.
func TestRenderTransfer(t *testing.T) {
	cfg := loadExample(t, frontendCluster(t, `transfer: sshPort: 2201
	}
	secrets: tokenKey: env: "HASTACK_TEST_TOKEN"
	bearerToken: encryptionKey: "tokenKey"
	frontend: {`))
	r, err := testRender(t, cfg, cfg.Clusters[0], "node1", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"node1", "node2", "node3"} {
		key := spec(t, r, n, "file:/etc/ssh/hastack-transfer/ssh_host_key")
		if key["content"] != "@@hastack:secret:hostKey@@\n" || key["mode"] != "0600" || key["owner"] != "root" {
			t.Errorf("%s: the host key file is %v", n, key)
		}
		conf := spec(t, r, n, "file:/etc/ssh/hastack-transfer/sshd_config")["content"].(string)
		if !strings.Contains(conf, "\nPort 2201\n") || !strings.Contains(conf, "\nHostKey /etc/ssh/hastack-transfer/ssh_host_key\n") || strings.Count(conf, "HostKey ") != 1 {
			t.Errorf("%s: sshd_config:\n%s", n, conf)
		}
		unit := spec(t, r, n, "file:/etc/systemd/system/hastack-transfer-sshd.service")["content"].(string)
		if !strings.Contains(unit, "\nExecStart=/usr/sbin/sshd -D -e -f /etc/ssh/hastack-transfer/sshd_config\n") {
			t.Errorf("%s: the unit:\n%s", n, unit)
		}
		svc := spec(t, r, n, "service:hastack-transfer-sshd")
		if svc["running"] != true || svc["reload"] != true {
			t.Errorf("%s: the service is %v", n, svc)
		}
		settings, _ := spec(t, r, n, "asconf:/opt/aspera/etc/aspera.conf")["settings"].([]any)
		found, docroot := false, false
		for _, s := range settings {
			m := s.(map[string]any)
			found = found || m["key"] == "token_encryption_key" && m["value"] == "@@hastack:secret:tokenKey@@" && m["section"] == "node"
			docroot = docroot || m["key"] == "absolute" && m["value"] == "/mnt/shared/aspera" && m["section"] == "node"
		}
		if !found {
			t.Errorf("%s: aspera.conf settings %v have no token_encryption_key placeholder", n, settings)
		}
		if !docroot {
			t.Errorf("%s: aspera.conf settings %v do not set users.docroot as the global <absolute>", n, settings)
		}
	}
	for _, nd := range r.Nodes {
		for _, res := range nd.Resources {
			if strings.Contains(res.ID, "hastack-transfer") && strings.HasPrefix(nd.Name, "lb") {
				t.Errorf("load balancer %s has %s", nd.Name, res.ID)
			}
		}
	}
	// The watch: a new key or config reloads the transfer sshd.
	for _, nd := range r.Nodes {
		if nd.Name != "node2" {
			continue
		}
		for _, res := range nd.Resources {
			if res.ID == "service:hastack-transfer-sshd" && strings.Join(res.Watch, " ") != "file:/etc/ssh/hastack-transfer/ssh_host_key file:/etc/ssh/hastack-transfer/sshd_config file:/etc/systemd/system/hastack-transfer-sshd.service" {
				t.Errorf("the service watches %v", res.Watch)
			}
		}
	}
}

// Without a front end there is no transfer sshd (nor a token key unless
// one is named).
func TestRenderNoTransfer(t *testing.T) {
	cfg := loadExample(t, "../../examples/three-node")
	r, err := testRender(t, cfg, cfg.Clusters[0], "node1", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range r.Nodes {
		for _, res := range nd.Resources {
			if strings.Contains(res.ID, "hastack-transfer") {
				t.Errorf("%s has %s without a front end", nd.Name, res.ID)
			}
		}
	}
}
