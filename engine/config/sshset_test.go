package config

import "testing"

// ssh.port and ssh.user written in the CUE, even with the schema's default
// value, are the user's (they win over ~/.ssh/config); left out, they are
// the schema's defaults and ssh_config may say otherwise.
func TestSSHPortUserSet(t *testing.T) {
	dir := writeConfig(t, `	nodes: [
		{name: "a", ip: "10.0.0.1"},
		{name: "b", ip: "10.0.0.2", ssh: {port: 22, user: "root"}},
		{name: "c", ip: "10.0.0.3", ssh: port: 2222},
	]
	primary: "a"
	secret: env: "X"
`)
	cfg, ps, err := Load(dir)
	if err != nil || len(ps) > 0 {
		t.Fatalf("Load: %v %v", err, ps)
	}
	want := map[string]SSH{
		"a": {Host: "10.0.0.1", Port: 22, User: "root"},
		"b": {Host: "10.0.0.2", Port: 22, User: "root", PortSet: true, UserSet: true},
		"c": {Host: "10.0.0.3", Port: 2222, User: "root", PortSet: true},
	}
	for _, n := range cfg.Cluster("c").Nodes {
		if n.SSH != want[n.Name] {
			t.Errorf("%s: %+v, want %+v", n.Name, n.SSH, want[n.Name])
		}
	}
}
