// Package e2e holds the end-to-end proofs of issue 4: hastack builds a real
// HA Redis on lab nodes (internal/lab: sshd, redis-server, redis-sentinel
// and iptables in namespaces) and passes seed 003's own acceptance test.
// The tests run the real CLI (this test binary re-executed as hastack, see
// TestMain) through the lab's controller namespace (HASTACK_LAB), exactly as
// a user would; each run gets its own environment, so the 3- and 5-node
// tests run in parallel. They need root and the
// Debian packages of lab.Available; they skip, saying so, without them.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"hastack.dev/hastack/internal/cli"
	"hastack.dev/hastack/internal/lab"
)

const testPassword = "e2e-Test-Passw0rd"

// cluster is a lab with a hastack config for it.
type cluster struct {
	t   *testing.T
	lab *lab.Lab
	dir string
}

// in is c for subtest t: helpers fail the test that calls them (a Fatal
// on the parent from a subtest's goroutine ends the wrong test).
func (c *cluster) in(t *testing.T) *cluster {
	cc := *c
	cc.t = t
	return &cc
}

// runCLI, set in a child's environment, makes the test binary be hastack.
const runCLI = "HASTACK_E2E_RUN_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(runCLI) == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// newCluster starts n nodes and writes their config, with extra CUE inside
// the cluster struct. The CLI finds the lab through HASTACK_LAB.
func newCluster(t *testing.T, n int, extra string) *cluster {
	start := time.Now()
	l := lab.Start(t, n)
	t.Logf("lab of %d nodes up in %.1fs", n, time.Since(start).Seconds())
	dir := t.TempDir()
	if err := l.WriteConfig(dir, extra); err != nil {
		t.Fatal(err)
	}
	return &cluster{t: t, lab: l, dir: dir}
}

// hastack runs the CLI in-process and returns its exit code and output.
func (c *cluster) hastack(args ...string) (int, string) {
	c.t.Helper()
	return runHastack(c.t, c.lab.Dir, c.dir, map[string]string{"HASTACK_REDIS_PASSWORD": testPassword}, args...)
}

// runHastack runs the CLI (this test binary, see TestMain) on the config in
// dir against the lab, with env (the passwords), logs what it printed and
// fails the test if it printed any of env's values.
func runHastack(t *testing.T, labDir, dir string, env map[string]string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append(args, dir)...)
	cmd.Env = append(os.Environ(), runCLI+"=1", "HASTACK_LAB="+labDir)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	code, s := runLogged(t, cmd, args)
	for _, v := range env {
		if strings.Contains(s, v) {
			t.Errorf("hastack %s printed a password", strings.Join(args, " "))
		}
	}
	return code, s
}

// runLogged runs cmd (the CLI with args), logs its exit code, time and
// output, and returns the code and the output.
func runLogged(t *testing.T, cmd *exec.Cmd, args []string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("hastack %s: %v", strings.Join(args, " "), err)
	}
	s := out.String()
	t.Logf("hastack %s: exit %d in %.1fs\n%s", strings.Join(args, " "), code, time.Since(start).Seconds(), s)
	return code, s
}

// must runs the CLI and fails the test unless it exits with want.
func (c *cluster) must(want int, args ...string) string {
	c.t.Helper()
	code, out := c.hastack(args...)
	if code != want {
		c.t.Fatalf("hastack %s exited %d, want %d", strings.Join(args, " "), code, want)
	}
	return out
}

// exec runs argv on a node as root (not over SSH).
func (c *cluster) exec(node string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.lab.Exec(ctx, node, argv...)
	return string(out), err
}

// redisCLI runs redis-cli on node with the password from the environment.
func (c *cluster) redisCLI(node string, args ...string) string {
	c.t.Helper()
	out, err := c.exec(node, append([]string{"env", "REDISCLI_AUTH=" + testPassword, "redis-cli", "--no-auth-warning"}, args...)...)
	if err != nil {
		c.t.Fatalf("%s: redis-cli %s: %v", node, strings.Join(args, " "), err)
	}
	return strings.TrimSpace(out)
}

// primary is the node node's Sentinel names as primary.
func (c *cluster) primary(node string) string {
	c.t.Helper()
	n, _ := c.lab.Node(node)
	out := c.redisCLI(node, "-h", n.IP, "-p", "41415", "SENTINEL", "get-master-addr-by-name", "myprimary")
	ip, _, _ := strings.Cut(out, "\n")
	for _, m := range c.lab.Nodes {
		if m.IP == ip {
			return m.Name
		}
	}
	c.t.Fatalf("%s's Sentinel names %q, not a lab node", node, out)
	return ""
}

var noPrimaryRE = regexp.MustCompile(`the cluster had no primary for ([0-9.]+)s`)

// failover runs the drill and returns how long the cluster had no primary.
func (c *cluster) failover() time.Duration {
	c.t.Helper()
	out := c.must(0, "check", "-failover")
	m := noPrimaryRE.FindStringSubmatch(out)
	if m == nil {
		c.t.Fatalf("check -failover did not report the time without a primary")
	}
	s, _ := strconv.ParseFloat(m[1], 64)
	return time.Duration(s * float64(time.Second))
}
