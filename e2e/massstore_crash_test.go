package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/lab"
	"hastack.dev/hastack/stacks/massstore"
)

// massstoreCrash is issue 13's whole-server crash, a subtest of
// TestMassStoreKills (its apply, its restart watcher): with jobs flowing,
// node2 is powered off (Lab.PowerOff: every process gone at once, no
// shutdown, its addresses gone). node1 and the witness stay Primary (size
// 2) and node1's workers carry the declared N-1 throughput, measured and
// judged by the server drill's own code (massstore.Probe). node2 booted
// (Lab.Boot: the enabled units start, as systemd at boot) rejoins by
// itself from its crashed data directory (grastate.dat seqno -1), its
// workers take jobs again, no job is lost or done twice, check passes and
// the plan is empty. Last, without the witness (garbd stopped: two voters
// left), the same crash leaves node1 non-Primary, refusing writes.
func massstoreCrash(t *testing.T, l *lab.Lab, dir string) {
	ctx := t.Context()
	hastack := (&cluster{t: t, lab: l, dir: dir}).must
	s, p := massstoreProbe(t, l, dir)
	waitGalera := func(node, want string, within time.Duration) {
		t.Helper()
		waitGaleraState(t, p, node, want, within)
	}
	holds := func(node string) bool {
		out, err := l.Exec(ctx, node, "ip", "-o", "-4", "addr", "show", "dev", "eth0")
		return err == nil && strings.Contains(string(out), " inet "+s.VIP+"/")
	}
	hastack(0, "check", "-wait", "1m")

	// Jobs flowing on both servers: 10 s of them at the redundant 8 jobs/s.
	b := massstore.Batch{}
	if err := p.Enqueue(ctx, "node1", b, "move", 80); err != nil {
		t.Fatal(err)
	}
	defer p.Remove(context.WithoutCancel(ctx), "node1", b)
	last, err := p.MaxRun(ctx, "node1")
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); p.RunsAfter(ctx, "node1", last, s.Workers("node2")) < 4; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("node2's workers take no jobs before the crash")
		}
	}
	n2, _ := l.Node("node2")
	if err := l.PowerOff("node2"); err != nil {
		t.Fatal(err)
	}
	crashed := time.Now()
	last, err = p.MaxRun(ctx, "node1")
	if err != nil {
		t.Fatal(err)
	}
	// A crash: MariaDB's saved state says the position is unknown.
	grastate := filepath.Join(n2.Dir, "varlib.upper/massstore/mysql/grastate.dat")
	if b, err := os.ReadFile(grastate); err != nil || !regexp.MustCompile(`(?m)^seqno:\s+-1$`).Match(b) {
		t.Fatalf("node2's grastate.dat after the power cut: %v %q, want seqno -1", err, b)
	}
	// Detect: node1 evicts node2; resume: node1's workers take a job; the
	// VIP (node2's after the vip drill, or node1's) on node1.
	var detect, resume, vipMoved time.Duration
	for deadline := crashed.Add(time.Minute); detect == 0 || resume == 0 || vipMoved == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a minute after node2's crash: node1 %q; node1's workers took a job: %v; the VIP on node1: %v", p.Galera(ctx, "node1"), resume > 0, vipMoved > 0)
		}
		if detect == 0 && p.Galera(ctx, "node1") == "2 Primary Synced" {
			detect = time.Since(crashed)
		}
		if resume == 0 && p.RunsAfter(ctx, "node1", last, s.Workers("node1")) > 0 {
			resume = time.Since(crashed)
		}
		if vipMoved == 0 && holds("node1") {
			vipMoved = time.Since(crashed)
		}
	}
	t.Logf("node2 powered off: node1 with the witness Primary, size 2, after %.1fs; node1's workers took a job after %.1fs; the VIP on node1 after %.1fs", detect.Seconds(), resume.Seconds(), vipMoved.Seconds())
	ms, err := p.MeasureThroughput(ctx, "node2", "node1", b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 {
		t.Errorf("measured %d processes, want the datamover and transcode", len(ms))
	}
	for _, m := range ms {
		t.Logf("node2 down, %s on node1: %s", m.Process, m)
		// The drill's rule, and a measure precise enough to judge by.
		if !m.Met() || m.Err > 0.02*m.Need {
			t.Errorf("node2 down: %s carries %s, short of the declared N-1 figure", m.Process, m)
		}
	}

	galeraLog := filepath.Join(n2.Dir, "log/lab/massstore-galera.service.log")
	before, err := os.ReadFile(galeraLog)
	if err != nil {
		t.Fatal(err)
	}
	booted := time.Now()
	if err := l.Boot(ctx, "node2"); err != nil {
		t.Fatal(err)
	}
	waitGalera("node2", "3 Primary Synced", 3*time.Minute)
	rejoin := time.Since(booted)
	waitGalera("node1", "3 Primary Synced", 10*time.Second)
	after, err := os.ReadFile(galeraLog)
	if err != nil || len(after) < len(before) {
		t.Fatalf("node2's MariaDB log: %v", err)
	}
	// galera-start recovered the crashed position from InnoDB, so node2
	// took only the writesets it missed (IST), not the whole data (SST).
	var lines []string
	for _, ln := range strings.Split(string(after[len(before):]), "\n") {
		if strings.Contains(ln, "galera-start:") || strings.Contains(ln, "Receiving IST: ") || strings.Contains(ln, "rsync IST completed") || strings.Contains(ln, "rsync SST completed") {
			lines = append(lines, strings.TrimSpace(ln))
		}
	}
	boot := strings.Join(lines, "\n")
	t.Logf("node2 booted: Synced in a cluster of 3 after %.1fs; its MariaDB log:\n%s", rejoin.Seconds(), boot)
	if !strings.Contains(boot, "recovered position: ") || !strings.Contains(boot, "Receiving IST: ") || strings.Contains(boot, "SST completed") {
		t.Error("node2 did not rejoin by IST from its recovered position")
	}

	// node2's workers take jobs again: four per instance at each stage.
	last, err = p.MaxRun(ctx, "node1")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []struct{ stage, kind string }{{"move", "datamover"}, {"transcode", "transcode"}} {
		if err := p.Enqueue(ctx, "node1", b, st.stage, 4*len(s.Processes[st.kind].Placement)); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range s.Workers("node2") {
		for deadline := time.Now().Add(time.Minute); p.RunsAfter(ctx, "node1", last, []string{w}) == 0; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s takes no job after the boot", w)
			}
		}
	}
	t.Logf("node2's workers all took a job %.1fs after the boot", time.Since(booted).Seconds())
	tl, took, err := p.Tally(ctx, "node1", b, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("crash: %s (all done %.1fs after the boot's jobs)", tl, took.Seconds())
	if !tl.OK() {
		t.Errorf("crash: %s", tl)
	}
	if err := p.Remove(ctx, "node1", b); err != nil {
		t.Fatal(err)
	}
	hastack(0, "check", "-wait", "1m")
	if out := hastack(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
		t.Error("the plan after the boot is not empty")
	}

	// Without the witness: garbd stopped (it leaves the cluster, two
	// voters stay), node2 powered off again, node1 alone is no majority.
	if out, err := l.Exec(ctx, "node3", "systemctl", "stop", "massstore-garbd"); err != nil {
		t.Fatalf("stopping garbd: %v: %s", err, out)
	}
	waitGalera("node1", "2 Primary Synced", time.Minute)
	if err := l.PowerOff("node2"); err != nil {
		t.Fatal(err)
	}
	crashed = time.Now()
	waitGalera("node1", "1 non-Primary", time.Minute)
	took = time.Since(crashed)
	if err := p.Enqueue(ctx, "node1", massstore.Batch{}, "move", 1); err == nil || !strings.Contains(err.Error(), "WSREP") {
		t.Errorf("node1 alone, no witness, took a write: %v (Galera %s)", err, p.Galera(ctx, "node1"))
	}
	t.Logf("no witness, node2 powered off: node1 %q after %.1fs, refuses writes", p.Galera(ctx, "node1"), took.Seconds())
}

// massstoreProbe decodes the config in dir and returns the stack's probe,
// its SQL run on the lab's nodes with the mariadb client.
func massstoreProbe(t *testing.T, l *lab.Lab, dir string) (*massstore.Stack, *massstore.Probe) {
	t.Helper()
	cfg, probs, err := config.Load(dir)
	if err != nil || len(probs) > 0 {
		t.Fatalf("loading the config: %v %v", err, probs)
	}
	s, err := massstore.Decode(cfg.Clusters[0])
	if err != nil {
		t.Fatal(err)
	}
	return s, s.Probe(func(ctx context.Context, node, q string) (string, error) {
		out, err := l.Exec(ctx, node, "mariadb", "--defaults-file=/etc/massstore/galera.cnf", "-N", "-B", "-e", q)
		return strings.TrimSpace(string(out)), err
	})
}

// waitGaleraState waits until node's "size status state" starts with want.
func waitGaleraState(t *testing.T, p *massstore.Probe, node, want string, within time.Duration) {
	t.Helper()
	start := time.Now()
	for got := p.Galera(t.Context(), node); !strings.HasPrefix(got, want); got = p.Galera(t.Context(), node) {
		if time.Since(start) > within {
			t.Fatalf("%s: Galera %q after %s, want %q", node, got, within, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMassStoreNoWitness is issue 13's declined witness on the lab: two
// servers, no garbd, acceptSplitBrainRisk: true. The plan says what that
// costs: node1, the first server, holds the deciding vote (pc.weight=2).
// node2 powered off: node1 alone keeps Primary (2 of 3 votes) and takes
// writes; node2 booted rejoins. node1 powered off: node2 alone (1 of 3) is
// non-Primary and refuses writes, although node2 is fine: the cost.
func TestMassStoreNoWitness(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"/usr/sbin/mariadbd", "/usr/lib/galera/libgalera_smm.so", "/usr/bin/rsync", "/usr/bin/socat"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs %s (tools/deps.sh)", p)
		}
	}
	ctx := t.Context()
	l := lab.Start(t, 2)
	dir := massstoreConfig(t, l, "", false)
	hastack := (&cluster{t: t, lab: l, dir: dir}).must
	hastack(0, "vet")
	note := "acceptSplitBrainRisk: no witness, so node1 holds the deciding vote (pc.weight=2)"
	if out := hastack(0, "apply", "-auto-approve"); !strings.Contains(out, note) {
		t.Errorf("the plan does not say what the declined witness costs (%q)", note)
	}
	hastack(0, "check", "-wait", "1m")
	if out := hastack(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
		t.Fatal("the plan after apply is not empty")
	}
	_, p := massstoreProbe(t, l, dir)
	b := massstore.Batch{}
	defer p.Remove(context.WithoutCancel(ctx), "node1", b)

	if err := l.PowerOff("node2"); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	waitGaleraState(t, p, "node1", "1 Primary", time.Minute)
	took := time.Since(cut)
	if err := p.Enqueue(ctx, "node1", b, "move", 1); err != nil {
		t.Errorf("node1 (weight 2) alone refused a write: %v (Galera %s)", err, p.Galera(ctx, "node1"))
	}
	t.Logf("node2 (weight 1) powered off: node1 %q after %.1fs, takes writes", p.Galera(ctx, "node1"), took.Seconds())

	booted := time.Now()
	if err := l.Boot(ctx, "node2"); err != nil {
		t.Fatal(err)
	}
	waitGaleraState(t, p, "node2", "2 Primary Synced", 3*time.Minute)
	t.Logf("node2 booted: Synced in a cluster of 2 after %.1fs", time.Since(booted).Seconds())

	if err := l.PowerOff("node1"); err != nil {
		t.Fatal(err)
	}
	cut = time.Now()
	waitGaleraState(t, p, "node2", "1 non-Primary", time.Minute)
	took = time.Since(cut)
	if err := p.Enqueue(ctx, "node2", massstore.Batch{}, "move", 1); err == nil || !strings.Contains(err.Error(), "WSREP") {
		t.Errorf("node2 (weight 1) alone took a write: %v (Galera %s)", err, p.Galera(ctx, "node2"))
	}
	t.Logf("node1 (weight 2) powered off: node2 %q after %.1fs, refuses writes", p.Galera(ctx, "node2"), took.Seconds())
}
