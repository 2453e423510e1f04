package engine

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/lab"
	"hastack.dev/hastack/internal/sshconn"
)

const testPassword = "s3cret-Test-Passw0rd"

// labRun plans (and applies when apply is set) the lab's config.
func labRun(t *testing.T, l *lab.Lab, dir string, apply bool) (*Session, []*Outcome) {
	t.Helper()
	cfg, probs, err := config.Load(dir)
	if err != nil || len(probs) > 0 {
		t.Fatalf("load: %v %v", err, probs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Prepare(ctx, cfg, Options{SSH: sshconn.Config{KnownHosts: []string{l.KnownHosts}, IdentityFiles: []string{l.Identity}, Dial: l.DialContext}})
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	t.Cleanup(s.Close)
	if !apply {
		return s, nil
	}
	outs := s.Apply(ctx, func(ev Event) {
		if ev.Err != nil {
			t.Logf("%s: %s: %v", ev.Node, ev.Change.ID, ev.Err)
		}
	})
	return s, outs
}

func planText(s *Session) string {
	var b bytes.Buffer
	WriteText(&b, s.Plans)
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
	outs := s.Apply(ctx, func(ev Event) {
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
