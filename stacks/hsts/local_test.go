package hsts

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hastack.dev/hastack/engine"
)

// ssh.host "local" reads the node on this machine with no SSH. Plan is
// read-only, so this runs on the test machine itself: without HSTS there,
// the plan must fail on aspera.conf, naming the node.
func TestLocalConnectorPlans(t *testing.T) {
	if _, err := os.Stat("/opt/aspera/etc/aspera.conf"); err == nil {
		t.Skip("this machine has HSTS installed: the test expects it has not")
	}
	dir := t.TempDir()
	cfg := `package c
import "hastack.dev/schema/hsts"
clusters: solo: hsts.#Cluster & {
	nodes: [
		{name: "a", ip: "127.0.0.21", ssh: {host: "local", port: 1}},
		{name: "b", ip: "127.0.0.22", ssh: {host: "local", port: 2}},
		{name: "c", ip: "127.0.0.23", ssh: {host: "local", port: 3}},
	]
	primary: "a"
}
`
	if err := os.WriteFile(filepath.Join(dir, "c.cue"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HASTACK_REDIS_PASSWORD", testPassword)
	_, err := engine.Prepare(context.Background(), loadExample(t, dir), engine.Options{})
	if err == nil || !strings.Contains(err.Error(), "aspera.conf is missing") || !strings.Contains(err.Error(), "node a") {
		t.Fatalf("want the missing aspera.conf on node a, got %v", err)
	}
}
