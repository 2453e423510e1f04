package modules

import (
	"context"
	"strings"
	"testing"

	"hastack.dev/hastack/internal/secret"
)

// A stamped command and the making of the stamps' directory are one exec;
// the stamp still goes over WriteFile.
func TestStampedCommandOneExec(t *testing.T) {
	r := resource(t, "command", "command:ks", map[string]any{"cmd": "/opt/aspera/bin/askmscli -i -u xfer", "stamp": true})
	c, err := commandModule{}.Diff(r, &Fact{Node: &NodeFacts{}}, &Env{Secret: secret.New("pw-1")})
	if err != nil || c == nil {
		t.Fatalf("change %v, error %v", c, err)
	}
	h := &recorder{}
	if err := c.Apply(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if len(h.cmds) != 1 || !strings.Contains(h.cmds[0], "askmscli -i -u xfer") || !strings.Contains(h.cmds[0], "mkdir -p "+StampDir) {
		t.Errorf("execs %q, want one with the command and the stamps' mkdir", h.cmds)
	}
	if len(h.writes) != 2 || h.writes[1].Path != stampPath("command:ks") {
		t.Errorf("writes %v, want the key and the stamp", h.writes)
	}
}
