package hsts

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/lab"
	"hastack.dev/hastack/internal/sshconn"
)

const testPassword = "s3cret-Test-Passw0rd"

// labRun plans (and applies when apply is set) the lab's config.
func labRun(t *testing.T, l *lab.Lab, dir string, apply bool) (*engine.Session, []*engine.Outcome) {
	t.Helper()
	cfg, probs, err := config.Load(dir)
	if err != nil || len(probs) > 0 {
		t.Fatalf("load: %v %v", err, probs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := engine.Prepare(ctx, cfg, engine.Options{SSH: sshconn.Config{KnownHosts: []string{l.KnownHosts}, IdentityFiles: []string{l.Identity}, Dial: l.DialContext}})
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	t.Cleanup(s.Close)
	if !apply {
		return s, nil
	}
	outs := s.Apply(ctx, func(ev engine.Event) {
		if ev.Err != nil {
			t.Logf("%s: %s: %v", ev.Node, ev.Change.ID, ev.Err)
		}
	})
	return s, outs
}

func planText(s *engine.Session) string {
	var b bytes.Buffer
	engine.WriteText(&b, s.Plans)
	return b.String()
}

func TestLabApplyConverges(t *testing.T) {
	l := lab.Start(t, 3)
	t.Setenv("HASTACK_REDIS_PASSWORD", testPassword)
	dir := t.TempDir()
	if err := l.WriteConfig(dir, ""); err != nil {
		t.Fatal(err)
	}
	s, outs := labRun(t, l, dir, true)
	t.Log(planText(s))
	for _, o := range outs {
		if o.Err() != nil {
			t.Fatalf("apply: %v %v", o.Err(), o.Failed)
		}
	}
	s2, _ := labRun(t, l, dir, false)
	txt := planText(s2)
	if !strings.Contains(txt, "No changes.") {
		t.Fatalf("second plan is not empty:\n%s", txt)
	}
	if strings.Contains(txt, testPassword) {
		t.Fatal("password in plan output")
	}
}

// An interrupt (Ctrl-C) mid-apply lets the change in flight finish, stops,
// leaves no half-written or temporary file, and the next run converges.
func TestLabInterruptedApplyConverges(t *testing.T) {
	l := lab.Start(t, 3)
	t.Setenv("HASTACK_REDIS_PASSWORD", testPassword)
	dir := t.TempDir()
	if err := l.WriteConfig(dir, ""); err != nil {
		t.Fatal(err)
	}
	s, _ := labRun(t, l, dir, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := 0
	outs := s.Apply(ctx, func(ev engine.Event) {
		events++
		if events == 5 {
			cancel() // as the CLI does on SIGINT
		}
	})
	if len(outs) != 1 || !outs[0].Stopped {
		t.Fatalf("apply was not reported as interrupted: %+v", outs)
	}
	if events < 5 || len(outs[0].Skipped) == 0 {
		t.Fatalf("events %d, skipped %v: the interrupt did not stop the run", events, outs[0].Skipped)
	}
	for _, n := range l.Nodes {
		out, err := l.Exec(context.Background(), n.Name, "sh", "-c", "find /opt/aspera /etc/systemd /etc/iptables -name '.*hastack*' 2>/dev/null")
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("%s: temporary files left: %q (%v)", n.Name, out, err)
		}
	}
	s2, outs2 := labRun(t, l, dir, true)
	if txt := planText(s2); strings.Contains(txt, "No changes.") {
		t.Fatalf("after the interrupt nothing was left to do:\n%s", txt)
	}
	for _, o := range outs2 {
		if o.Err() != nil {
			t.Fatalf("second apply: %v %v", o.Err(), o.Failed)
		}
	}
	s3, _ := labRun(t, l, dir, false)
	if txt := planText(s3); !strings.Contains(txt, "No changes.") {
		t.Fatalf("the run after the interrupt did not converge:\n%s", txt)
	}
}

// A node that cannot be reached stops plan, naming it; with AllowPartial
// the others are planned and applied, and the unreached node is untouched.
func TestLabAllowPartial(t *testing.T) {
	l := lab.Start(t, 3)
	t.Setenv("HASTACK_REDIS_PASSWORD", testPassword)
	dir := t.TempDir()
	if err := l.WriteConfig(dir, ""); err != nil {
		t.Fatal(err)
	}
	// node3's sshd is on 22: point its ssh.port at a closed one.
	cue, err := os.ReadFile(dir + "/cluster.cue")
	if err != nil {
		t.Fatal(err)
	}
	node3 := l.Nodes[2]
	fixed := strings.Replace(string(cue), fmt.Sprintf("{name: %q, ip: %q, ssh: user: \"root\"}", node3.Name, node3.IP),
		fmt.Sprintf("{name: %q, ip: %q, ssh: {user: \"root\", port: 2}}", node3.Name, node3.IP), 1)
	if fixed == string(cue) {
		t.Fatalf("could not find node3 in the config:\n%s", cue)
	}
	if err := os.WriteFile(dir+"/cluster.cue", []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, probs, err := config.Load(dir)
	if err != nil || len(probs) > 0 {
		t.Fatalf("load: %v %v", err, probs)
	}
	opts := engine.Options{SSH: sshconn.Config{KnownHosts: []string{l.KnownHosts}, IdentityFiles: []string{l.Identity}, Dial: l.DialContext, ConnectTimeout: 3 * time.Second}}
	ctx := context.Background()
	if _, err := engine.Prepare(ctx, cfg, opts); err == nil || !strings.Contains(err.Error(), "node3") {
		t.Fatalf("plan with node3 unreachable: %v, want an error naming node3", err)
	}
	opts.AllowPartial = true
	s, err := engine.Prepare(ctx, cfg, opts)
	if err != nil {
		t.Fatalf("partial plan: %v", err)
	}
	defer s.Close()
	if len(s.Unreached) != 1 || s.Unreached[0].Node != "node3" || len(s.Plans[0].Nodes) != 2 {
		t.Fatalf("unreached %v, planned %d nodes; want node3 left out and 2 planned", s.Unreached, len(s.Plans[0].Nodes))
	}
	for _, o := range s.Apply(ctx, func(engine.Event) {}) {
		if o.Err() != nil {
			t.Fatalf("partial apply: %v %v", o.Err(), o.Failed)
		}
	}
	out, err := l.Exec(ctx, "node3", "cat", "/opt/aspera/etc/aspera.conf")
	if err != nil || strings.Contains(string(out), "ha_redis") {
		t.Fatalf("node3 was changed (or unreadable: %v):\n%s", err, out)
	}
}
