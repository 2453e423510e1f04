package engine

import (
	"context"
	"strings"
	"testing"

	"hastack.dev/hastack/internal/host"
)

func TestConnectorFor(t *testing.T) {
	var gotArg, gotNode string
	RegisterConnector("test-connector", func(ctx context.Context, arg string, n NodeSpec) (host.Host, error) {
		gotArg, gotNode = arg, n.Name
		return host.Local(n.Name), nil
	})
	c, err := ConnectorFor("test-connector:some/dir:x")
	if err != nil {
		t.Fatal(err)
	}
	h, err := c(context.Background(), NodeSpec{Name: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	if gotArg != "some/dir:x" || gotNode != "n1" {
		t.Errorf("connector got arg %q node %q, want some/dir:x and n1", gotArg, gotNode)
	}
	if _, err := ConnectorFor("nope"); err == nil || !strings.Contains(err.Error(), "test-connector") {
		t.Errorf("unknown connector: err %v, want one listing the known connectors", err)
	}
}
