package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os/exec"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"hastack.dev/hastack/internal/lab"
)

// Script commands and conditions for the plan/apply scripts, which run
// hastack against a real lab (sshd nodes in namespaces, see internal/lab):
//
//	[!lab] skip 'needs root, sshd, redis-server, redis-sentinel (lab.Available)'
//	lab-up 3            start a lab for this script (stopped when it ends);
//	                    sets HASTACK_LAB, LAB_NAME, LAB_DIR, LAB_KNOWN_HOSTS,
//	                    LAB_IDENTITY, NODE<i>_IP and writes $WORK/cluster/cluster.cue
//	lab-config DIR [F]  rewrite DIR/cluster.cue with file F's CUE put inside
//	                    the cluster struct (lab.WriteConfig's extra)
//	lab-exec NODE CMD…  run CMD on NODE as root (not over SSH); its output is stdout
//	exitcode N PROG…    like exec, but PROG must exit with status N (plan
//	                    -detailed-exitcode's 2 is not "any failure")
var labCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"lab-up":     cmdLabUp,
	"lab-config": cmdLabConfig,
	"lab-exec":   cmdLabExec,
	"exitcode":   cmdExitCode,
}

// labCondition answers [lab]: can this machine start a lab?
func labCondition(cond string) (bool, error) {
	if cond != "lab" {
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	return lab.Available() == nil, nil
}

func scriptLab(ts *testscript.TestScript) *lab.Lab {
	dir := ts.Getenv("LAB_DIR")
	if dir == "" {
		ts.Fatalf("no lab: run lab-up first")
	}
	l, err := lab.Load(dir)
	ts.Check(err)
	return l
}

func cmdLabUp(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: lab-up NODES")
	}
	var n int
	if _, err := fmt.Sscan(args[0], &n); err != nil {
		ts.Fatalf("lab-up: %v", err)
	}
	if err := lab.Available(); err != nil {
		ts.Fatalf("lab-up: %v (guard the script with [!lab] skip)", err)
	}
	// Namespaces are machine-wide and scripts run in parallel: name the
	// lab after this script's work folder, which is unique.
	h := fnv.New32a()
	h.Write([]byte(ts.Getenv("WORK")))
	name := fmt.Sprintf("s%08x", h.Sum32())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l, err := lab.Up(ctx, lab.Options{Name: name, Nodes: n})
	if err != nil {
		ts.Fatalf("lab-up: %v", err)
	}
	ts.Defer(func() {
		if err := l.Down(); err != nil {
			ts.Logf("lab down: %v", err)
		}
	})
	ts.Setenv("HASTACK_LAB", l.Dir)
	ts.Setenv("LAB_DIR", l.Dir)
	ts.Setenv("LAB_NAME", l.Name)
	ts.Setenv("LAB_KNOWN_HOSTS", l.KnownHosts)
	ts.Setenv("LAB_IDENTITY", l.Identity)
	for i, node := range l.Nodes {
		ts.Setenv(fmt.Sprintf("NODE%d_IP", i+1), node.IP)
	}
	ts.Check(l.WriteConfig(ts.MkAbs("cluster"), ""))
}

func cmdLabConfig(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: lab-config DIR [EXTRA.cue]")
	}
	extra := ""
	if len(args) == 2 {
		extra = ts.ReadFile(args[1])
	}
	ts.Check(scriptLab(ts).WriteConfig(ts.MkAbs(args[0]), extra))
}

func cmdLabExec(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: lab-exec NODE CMD [ARGS...]")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := scriptLab(ts).Exec(ctx, args[0], args[1:]...)
	ts.Stdout().Write(out)
	switch {
	case err != nil && !neg:
		ts.Fatalf("lab-exec %s: %v", strings.Join(args, " "), err)
	case err == nil && neg:
		ts.Fatalf("lab-exec %s: unexpected success", strings.Join(args, " "))
	}
}

func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG [ARGS...]")
	}
	var want int
	if _, err := fmt.Sscan(args[0], &want); err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	got := 0
	err := ts.Exec(args[1], args[2:]...)
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exitcode: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}
