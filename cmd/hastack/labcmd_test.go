package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hastack.dev/hastack/internal/cli"
	"hastack.dev/hastack/internal/lab"
)

func runCLI(args ...string) (int, string) {
	var out bytes.Buffer
	code := cli.Run(&cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}, args)
	return code, out.String()
}

// A lab name reaches no path or namespace before it is checked, and no
// flag says where a lab lives: only its name does.
func TestLabNamesAndDirsComeFromTheName(t *testing.T) {
	for _, args := range [][]string{
		{"lab", "down", "-name", "../../etc"},
		{"lab", "exec", "-name", "a/b", "node1", "--", "true"},
		{"lab", "up", "-name", "UPPER"},
		{"lab", "down", "-dir", "/tmp/x"},
	} {
		code, out := runCLI(args...)
		if code != cli.ExitUsage {
			t.Errorf("hastack %s exited %d, want %d\n%s", strings.Join(args, " "), code, cli.ExitUsage, out)
		}
	}
}

// `lab down`, `lab exec` and `lab ls` refuse a /tmp/hastack-lab-NAME that
// another user made, say why, and leave it and what its lab.json names.
func TestLabRefusesAPlantedDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the planted dir must belong to another user")
	}
	name := fmt.Sprintf("c%d", os.Getpid()%100000000)
	dir := lab.DirOf(name)
	os.RemoveAll(dir)
	t.Cleanup(func() { os.RemoveAll(dir) })
	victim := t.TempDir()
	keep := filepath.Join(victim, "keep")
	if err := os.WriteFile(keep, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	planted := fmt.Sprintf(`{"name": %q, "dir": %q, "nodes": [{"name": "node1", "netns": "x", "pid": 1, "dir": %q}]}`, name, victim, victim)
	if err := os.WriteFile(filepath.Join(dir, "lab.json"), []byte(planted), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"lab", "down", "-name", name},
		{"lab", "exec", "-name", name, "node1", "--", "touch", filepath.Join(victim, "ran")},
	} {
		code, out := runCLI(args...)
		if code != cli.ExitFailure || !strings.Contains(out, "owned by uid 65534") {
			t.Errorf("hastack %s exited %d, want %d and why:\n%s", strings.Join(args, " "), code, cli.ExitFailure, out)
		}
	}
	if _, out := runCLI("lab", "ls"); !strings.Contains(out, dir+" is owned by uid 65534") || strings.Contains(out, victim) {
		t.Errorf("lab ls lists the planted dir or does not say why it does not:\n%s", out)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a directory outside the lab was removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(victim, "ran")); err == nil {
		t.Errorf("lab exec ran a command for a lab that is not up")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the planted dir was removed: %v", err)
	}
}
