package engine

import (
	"fmt"
	"os/user"
	"sort"
	"testing"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/secret"
)

// echoSystem is a driver's system for tests: its stack writes, on every
// node, file a holding the inputs' "text" (and the password's
// placeholder), and one more file per name listed in the inputs' "extra".
type echoSystem struct {
	plain
	dir string // where the files are, on every node
}

func (s echoSystem) Stack(ctx *cue.Context, inputs map[string]any) (cue.Value, error) {
	text, _ := inputs["text"].(string)
	var extra []string
	if xs, ok := inputs["extra"].([]string); ok {
		extra = xs
	}
	var nodes []map[string]any
	for _, n := range s.cl.Nodes {
		res := []map[string]any{fileRes("a", s.dir+"/"+n.Name+"-a", text+" "+secret.Placeholder+"\n")}
		for _, x := range extra {
			res = append(res, fileRes(x, s.dir+"/"+n.Name+"-"+x, x+"\n"))
		}
		nodes = append(nodes, map[string]any{"name": n.Name, "ip": n.IP,
			"ssh": map[string]any{"host": n.SSH.Host, "port": n.SSH.Port, "user": n.SSH.User}, "resources": res})
	}
	return ctx.Encode(map[string]any{"phases": []map[string]any{{"name": "write"}}, "nodes": nodes}), nil
}

func fileRes(id, path, content string) map[string]any {
	return map[string]any{"id": "file:" + id, "kind": "file", "phase": 0,
		"spec": map[string]any{"path": path, "content": content, "owner": me.user, "group": me.group, "mode": "0644"}}
}

// me is who runs the tests: the owner of the files they write.
var me = func() (m struct{ user, group string }) {
	m.user, m.group = "root", "root"
	if u, err := user.Current(); err == nil {
		m.user = u.Username
		if g, err := user.LookupGroupId(u.Gid); err == nil {
			m.group = g.Name
		}
	}
	return m
}()

// echoCluster is a system of n nodes reached with the local connector,
// built without loading a config folder.
func echoCluster(t testing.TB, n int) (*config.Config, *config.Cluster) {
	t.Helper()
	ctx := cuecontext.New()
	cl := &config.Cluster{Name: "echo", Field: "stacks"}
	var nodes []string
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("n%d", i)
		cl.Nodes = append(cl.Nodes, config.Node{Name: name, IP: fmt.Sprintf("127.0.0.%d", 20+i), SSH: config.SSH{Host: LocalHost, Port: i, User: "root"}})
		nodes = append(nodes, name)
	}
	sort.Strings(nodes)
	cl.Value = ctx.Encode(map[string]any{"nodes": nodes})
	if err := cl.Value.Err(); err != nil {
		t.Fatal(err)
	}
	return &config.Config{Context: ctx, Clusters: []*config.Cluster{cl}}, cl
}
