package lab

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPowerOffBoot: PowerOff ends everything on the node; Boot brings it
// back with the same host key (sshRun checks known_hosts), a fresh /run,
// and the enabled unit running again while the disabled one stays down.
func TestPowerOffBoot(t *testing.T) {
	l := Start(t, 2)
	n := l.Nodes[0]
	// Two units from the stand-ins: asperarund enabled, asperanoded not.
	sshRun(t, l, n, "systemctl enable --now asperarund && systemctl start asperanoded && nohup sleep 1001 >/dev/null 2>&1 & echo started")
	time.Sleep(300 * time.Millisecond)
	if out := sshRun(t, l, n, "systemctl is-active asperarund asperanoded; pgrep -f \"slee[p] 1001\" >/dev/null && echo sleeping"); strings.Count(out, "active\n") != 2 || !strings.Contains(out, "sleeping") {
		t.Fatalf("before power off: %q", out)
	}
	if err := l.PowerOff(n.Name); err != nil {
		t.Fatal(err)
	}
	if pids := pidsInNetns(n.Netns); len(pids) != 0 {
		t.Fatalf("processes left after PowerOff: %v", pids)
	}
	if _, err := l.Exec(context.Background(), n.Name, "true"); err == nil {
		t.Fatal("Exec works on a powered-off node")
	}
	// The other node still reaches the controller (br0's MAC pinned).
	sshRun(t, l, l.Nodes[1], "true")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := l.Boot(ctx, n.Name); err != nil {
		t.Fatal(err)
	}
	n, _ = l.Node(n.Name)
	var out string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out = sshRun(t, l, n, "systemctl is-active asperarund asperanoded; pgrep -f \"slee[p] 1001\" >/dev/null && echo sleeping; test -e /run/lab-systemd/asperanoded.service.pid && echo stalepid; true")
		if strings.HasPrefix(out, "active\ninactive\n") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.HasPrefix(out, "active\ninactive\n") || strings.Contains(out, "sleeping") || strings.Contains(out, "stalepid") {
		t.Fatalf("after boot: want asperarund active, asperanoded inactive, no sleep, no stale pid file: %q", out)
	}
	if _, err := os.Stat(filepath.Join(n.Dir, "run/lab/sshd_config")); err != nil {
		t.Fatal(err)
	}
	// The peer reaches the booted node by its address.
	sshRun(t, l, l.Nodes[1], "bash -c 'echo > /dev/tcp/"+n.IP+"/22'")
}
