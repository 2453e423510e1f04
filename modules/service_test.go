package modules

import (
	"context"
	"strings"
	"testing"
)

// A unit's enable, start and the clearing of its owed restart are one exec
// on the node, and the plan still shows each command.
func TestServiceOneExec(t *testing.T) {
	nf := canned(nil, nil)
	nf.Units = map[string]UnitState{"web": {Active: "inactive", Enabled: "disabled"}}
	c, err := diffOn(t, resource(t, "service", "service:web", map[string]any{"unit": "web", "enabled": true, "running": true}), nf)
	if err != nil {
		t.Fatal(err)
	}
	if c.Action != Start || c.Summary != "systemctl enable web; systemctl start web" || len(c.Commands) != 2 {
		t.Fatalf("change %+v", c)
	}
	h := &recorder{}
	if err := c.Apply(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	if len(h.cmds) != 1 {
		t.Fatalf("%d execs, want 1: %q", len(h.cmds), h.cmds)
	}
	for _, want := range []string{"systemctl enable web", "systemctl start web", "rm -f " + PendingDir + "/web"} {
		if !strings.Contains(h.cmds[0], want) {
			t.Errorf("the exec lacks %q:\n%s", want, h.cmds[0])
		}
	}
}

// A unit that does not start is an error naming the command that failed,
// as when each ran alone.
func TestServiceStartFails(t *testing.T) {
	nf := canned(nil, nil)
	nf.Units = map[string]UnitState{"web": {Active: "inactive", Enabled: "enabled"}}
	c, err := diffOn(t, resource(t, "service", "service:web", map[string]any{"unit": "web", "enabled": true, "running": true}), nf)
	if err != nil {
		t.Fatal(err)
	}
	h := &failingHost{code: 1, stderr: "Job for web.service failed.\n"}
	err = c.Apply(context.Background(), h)
	if err == nil || err.Error() != "systemctl start web: exit 1: Job for web.service failed." {
		t.Errorf("error %v", err)
	}
}

// On a real node: a start owed by an earlier run is done and its marker
// cleared in the one exec; a unit that dies at once fails with the
// systemctl line that failed and its message, and keeps its marker.
func TestLabServiceOneExec(t *testing.T) {
	n := startNode(t)
	n.exec(t, "sh", "-c", "mkdir -p "+PendingDir+" && touch "+PendingDir+"/asperarund")
	r := resource(t, "service", "service:asperarund", map[string]any{"unit": "asperarund", "enabled": true, "running": true})
	n.converge(t, r, nil)
	if got := n.exec(t, "sh", "-c", "ls "+PendingDir+"; systemctl is-active asperarund"); got != "active\n" {
		t.Errorf("after the start: %q, want no marker and an active unit", got)
	}
	n.exec(t, "sh", "-c", "systemctl stop asperarund; touch "+PendingDir+"/asperarund; d=/etc/systemd/system/asperarund.service.d; mkdir -p $d; printf '[Service]\\nExecStart=/bin/false\\n' >$d/x.conf")
	c := n.diff(t, r, nil)
	if c == nil {
		t.Fatal("no start planned for a stopped unit")
	}
	err := c.Apply(context.Background(), n.h)
	if err == nil || !strings.HasPrefix(err.Error(), "systemctl start asperarund: exit 1: Job for asperarund.service failed") {
		t.Errorf("error %v", err)
	}
	if got := n.exec(t, "ls", PendingDir); got != "asperarund\n" {
		t.Errorf("markers %q, want the failed unit's kept", got)
	}
}
