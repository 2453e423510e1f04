package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBearerDrill is issue 11's bearer-token proof through hastack itself:
// `hastack check -drill bearer` on three HSTS nodes behind two load
// balancers with `bearerToken: {scopeRole: "user", tokenKeyLength: 2048}`
// makes a token expiring 2 minutes ahead on node1, which works through the
// VIP on every node, cannot create an access key and is refused once
// expired; nothing of the drill is left behind, also after a Ctrl-C.
func TestBearerDrill(t *testing.T) {
	t.Parallel()
	l, vip, c := frontendLab(t)
	writeFrontendConfig(t, l, c.dir, vip)
	// The options, in a file of their own in the config's package.
	opts := "package cluster\n\nclusters: " + strconv.Quote(l.Name) + ": bearerToken: {scopeRole: \"user\", tokenKeyLength: 2048}\n"
	if err := os.WriteFile(filepath.Join(c.dir, "bearer.cue"), []byte(opts), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must(0, "apply", "-auto-approve")

	start := time.Now()
	out := c.must(0, "check", "-wait", "30s", "-drill", "bearer")
	t.Logf("check -drill bearer: %.1fs", time.Since(start).Seconds())
	if m := regexp.MustCompile(`--scope-role user --token-key-length 2048 --expires-at 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \(in 2m0s\)`).FindString(out); m == "" {
		t.Error("the token was not made with the config's options and a 2-minute expiry")
	}
	perNode := func(what, re string) []int {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Errorf("%s: no line matching %s", what, re)
			return nil
		}
		var n []int
		for _, s := range m[1:4] {
			k, _ := strconv.Atoi(s)
			if k == 0 {
				t.Errorf("%s: a node did not answer: %s", what, m[0])
			}
			n = append(n, k)
		}
		t.Logf("%s: node1-3 %v", what, n)
		return n
	}
	perNode("token accepted through the VIP", `ok    -      bearer: the token worked through the VIP \S+ on every node: GET /info answered by node1 (\d+), node2 (\d+), node3 (\d+)`)
	perNode("access key creation refused", `ok    -      bearer: a user-scope token creating an access key through the VIP: refused by node1 (\d+), node2 (\d+), node3 (\d+) \(403\)`)
	perNode("expired token refused", `ok    -      bearer: the expired token was refused through the VIP by every node: node1 (\d+), node2 (\d+), node3 (\d+) \(401\)`)
	if m := regexp.MustCompile(`first refusal (-?[0-9.]+)s after expires-at`).FindStringSubmatch(out); m == nil {
		t.Error("no time to the first refusal")
	} else if s, _ := strconv.ParseFloat(m[1], 64); s < 0 || s > 1 {
		t.Errorf("first refusal %ss after expires-at, want within 1 s (one clock, polled every 100 ms)", m[1])
	}
	if !strings.Contains(out, "bearer: cleanup: test access key and node user hastack-check-bearer-") {
		t.Error("the drill did not report its cleanup")
	}
	noSecrets(t, out)
	leftNothing(t, c)

	// Ctrl-C while the drill waits for the token to expire: the key and the
	// user go all the same.
	code, out := interruptedDrill(t, c, "bearer: waiting for the token to expire")
	if code != 1 || !strings.Contains(out, "interrupted waiting for the token to expire") ||
		!strings.Contains(out, "bearer: cleanup: test access key and node user hastack-check-bearer-") {
		t.Errorf("an interrupted drill: exit %d, want 1, with its cleanup reported", code)
	}
	noSecrets(t, out)
	leftNothing(t, c)

	// The drill can fail: node3 given a Redis of its own (seed 000's
	// problem) does not know the drill's access key, so the token does not
	// work there.
	script := fmt.Sprintf(`set -e
redis-server --port 31416 --bind 127.0.0.1 --save '' --requirepass %q --daemonize yes >/dev/null
for kv in db_type,redis db_host,127.0.0.1 db_port,31416; do /opt/aspera/bin/asconfigurator -x "set_server_data;$kv" >/dev/null; done
systemctl restart asperanoded`, testPassword)
	if out, err := c.exec("node3", "bash", "-c", script); err != nil {
		t.Fatalf("node3: %v %s", err, out)
	}
	time.Sleep(3 * time.Second) // HAProxy's rise after the restart
	out = c.must(1, "check", "-drill", "bearer")
	if !strings.Contains(out, "FAIL  -      bearer: the token did not work through the VIP on node3: accepted by node1 ") ||
		!strings.Contains(out, "bearer: cleanup: test access key and node user hastack-check-bearer-") {
		t.Error("the drill did not fail on node3, which keeps its own Redis, or did not clean up")
	}
	leftNothing(t, c)
}

// noSecrets fails if out shows a token (base64url of JSON starts "eyJ")
// or a private key.
func noSecrets(t *testing.T, out string) {
	t.Helper()
	if strings.Contains(out, "eyJ") || strings.Contains(out, "PRIVATE KEY") {
		t.Error("hastack printed the bearer token or its private key")
	}
}

// leftNothing fails if a drill's node user, access key or private-key
// folder is still there.
func leftNothing(t *testing.T, c *cluster) {
	t.Helper()
	ip := c.ip("node1")
	for _, h := range []string{"aspera:access_keys", "aspera:node_users"} {
		if keys := c.redisCLI("node1", "-h", ip, "-p", "31415", "HKEYS", h); strings.Contains(keys, "hastack-check-bearer-") {
			t.Errorf("the drill left %s behind: %s", h, keys)
		}
	}
	if out, _ := c.exec("node1", "sh", "-c", "ls -d /tmp/hastack-check-bearer.* 2>/dev/null"); strings.TrimSpace(out) != "" {
		t.Errorf("the drill left its private-key folder on node1: %s", out)
	}
}

// interruptedDrill runs check -drill bearer and sends it SIGINT once it
// prints a line containing at; it returns the exit code and the output.
func interruptedDrill(t *testing.T, c *cluster, at string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "check", "-drill", "bearer", c.dir)
	cmd.Env = append(os.Environ(), runCLI+"=1", "HASTACK_LAB="+c.lab.Dir, "HASTACK_REDIS_PASSWORD="+testPassword)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if !sent && strings.Contains(sc.Text(), at) {
				sent = true
				cmd.Process.Signal(os.Interrupt)
			}
		}
	}()
	timer := time.AfterFunc(4*time.Minute, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	pw.Close()
	wg.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("hastack check -drill bearer, interrupted: exit %d\n%s", code, out.String())
	if strings.Contains(out.String(), testPassword) {
		t.Error("hastack printed the password")
	}
	return code, out.String()
}
