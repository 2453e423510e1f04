package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestLock is issue 8's proof of the cluster lock on real sshd nodes: two
// applies of one cluster started together, from two controllers, and
// exactly one proceeds while the other exits 1 naming it and touches no
// node; a run waiting at its prompt holds the lock against other
// controllers (node lock) and other runs of this one (local lock);
// -lock-timeout waits for it and then finds nothing to do; a killed holder
// releases every node's lock.
func TestLock(t *testing.T) {
	c := newCluster(t, 3, "")
	ctlA, ctlB := t.TempDir(), t.TempDir() // two controllers: their own local locks

	t.Run("race", func(t *testing.T) {
		c := c.in(t)
		before := c.unitStarts()
		a := c.start(ctlA, nil, "apply", "-auto-approve")
		b := c.start(ctlB, nil, "apply", "-auto-approve")
		codeA, codeB := a.wait(t), b.wait(t)
		win, lose := a, b
		if codeA != 0 {
			win, lose = b, a
		}
		if !(codeA == 0 && codeB == 1 || codeA == 1 && codeB == 0) {
			t.Fatalf("exits %d and %d: want exactly one 0 and one 1", codeA, codeB)
		}
		lose.refusedBy(t, win, "node node")
		if !strings.Contains(win.out.String(), "Apply complete") {
			t.Fatal("the run that proceeded did not complete")
		}
		// No interleaving: every service start on every node is one the
		// winner reported.
		after := c.unitStarts()
		for key, n := range after {
			node, unit, _ := strings.Cut(key, " ")
			reported := win.serviceActions(node, unit)
			if got := n - before[key]; got != reported {
				t.Errorf("%s: %s started %d times, the winning run reported %d", node, unit, got, reported)
			}
		}
	})

	// A changed setting, so apply has something to do and waits at its
	// prompt, holding the lock.
	if err := c.lab.WriteConfig(c.dir, debugExtra); err != nil {
		t.Fatal(err)
	}

	t.Run("held at the prompt", func(t *testing.T) {
		c := c.in(t)
		stdin, holder := c.startInteractive(ctlA)
		before := c.redisConfs()
		other := c.start(ctlB, nil, "apply", "-auto-approve")
		if code := other.wait(t); code != 1 {
			t.Fatalf("another controller's apply exited %d while the lock was held, want 1", code)
		}
		other.refusedBy(t, holder, "node node")
		same := c.start(ctlA, nil, "apply", "-auto-approve")
		if code := same.wait(t); code != 1 {
			t.Fatalf("a second apply from this controller exited %d, want 1", code)
		}
		same.refusedBy(t, holder, "this machine")
		if after := c.redisConfs(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatal("a refused run changed a node's Redis config")
		}

		// -lock-timeout waits for the holder, then plans afresh: nothing left.
		waiter := c.start(ctlB, nil, "apply", "-auto-approve", "-lock-timeout", "3m")
		waiter.waitFor(t, "waiting for it (-lock-timeout 3m0s)")
		io.WriteString(stdin, "yes\n")
		stdin.Close()
		if code := holder.wait(t); code != 0 || !strings.Contains(holder.out.String(), "Apply complete") {
			t.Fatalf("the holder exited %d", code)
		}
		if code := waiter.wait(t); code != 0 || !strings.Contains(waiter.out.String(), "No changes.") {
			t.Fatalf("the waiting apply exited %d, or found changes after the holder's apply", code)
		}
	})

	if err := c.lab.WriteConfig(c.dir, `redis: debugCommand: "local"`); err != nil {
		t.Fatal(err)
	}

	t.Run("killed holder", func(t *testing.T) {
		c := c.in(t)
		_, holder := c.startInteractive(ctlA)
		holder.cmd.Process.Signal(syscall.SIGKILL)
		holder.wait(t)
		// sshd sees the connection close and each node's lock command its
		// input end: the lock is free and its holder file gone.
		for _, n := range c.lab.Nodes {
			c.eventually(n.Name, "flock -n /var/lib/hastack/lock true && ! test -e /var/lib/hastack/lock.holder")
		}
		next := c.start(ctlA, nil, "apply", "-auto-approve")
		if code := next.wait(t); code != 0 {
			t.Fatalf("apply after the holder was killed exited %d", code)
		}
	})
}

// run is the CLI running in the background.
type run struct {
	cmd  *exec.Cmd
	out  syncBuffer
	done chan struct{}
	code int
}

// start runs the CLI on c's config as controller ctl (its own cache folder,
// so its own local locks), with stdin when not nil.
func (c *cluster) start(ctl string, stdin io.Reader, args ...string) *run {
	c.t.Helper()
	r := &run{done: make(chan struct{})}
	r.cmd = exec.Command(os.Args[0], append(args, c.dir)...)
	r.cmd.Env = append(os.Environ(), runCLI+"=1", "HASTACK_LAB="+c.lab.Dir,
		"HASTACK_REDIS_PASSWORD="+testPassword, "XDG_CACHE_HOME="+filepath.Join(ctl, "cache"))
	r.cmd.Stdin = stdin
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		err := r.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &ee):
			r.code = ee.ExitCode()
		default:
			r.code = -1
		}
		close(r.done)
	}()
	return r
}

// startInteractive starts an apply that waits at its prompt, so it holds
// the cluster's locks until told "yes" on the returned stdin.
func (c *cluster) startInteractive(ctl string) (io.WriteCloser, *run) {
	c.t.Helper()
	// An *os.File, not an io.Pipe: exec would wait for its copy to end.
	pr, pw, err := os.Pipe()
	if err != nil {
		c.t.Fatal(err)
	}
	r := c.start(ctl, pr, "apply")
	pr.Close()
	c.t.Cleanup(func() { pw.Close() })
	r.waitFor(c.t, "Only 'yes' will be accepted")
	return pw, r
}

func (r *run) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(5 * time.Minute):
		r.cmd.Process.Kill()
		t.Fatalf("hastack %s did not end", strings.Join(r.cmd.Args[1:], " "))
	}
	if strings.Contains(r.out.String(), testPassword) {
		t.Errorf("hastack %s printed the password", strings.Join(r.cmd.Args[1:], " "))
	}
	t.Logf("hastack %s (pid %d): exit %d\n%s", strings.Join(r.cmd.Args[1:], " "), r.cmd.Process.Pid, r.code, r.out.String())
	return r.code
}

// waitFor waits until the run prints s.
func (r *run) waitFor(t testing.TB, s string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(r.out.String(), s) {
		select {
		case <-r.done:
			t.Fatalf("hastack %s ended (exit %d) before printing %q:\n%s", strings.Join(r.cmd.Args[1:], " "), r.code, s, r.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.cmd.Process.Kill()
			t.Fatalf("hastack %s never printed %q:\n%s", strings.Join(r.cmd.Args[1:], " "), s, r.out.String())
		}
	}
}

// refusedBy checks that r was refused by holder's lock at where, and that
// it planned and changed nothing.
func (r *run) refusedBy(t *testing.T, holder *run, where string) {
	t.Helper()
	out := r.out.String()
	re := regexp.MustCompile(`the lock on ` + regexp.QuoteMeta(where) + `.* is held by \S+@\S+ since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(run [0-9a-f]{16}, pid ` +
		fmt.Sprint(holder.cmd.Process.Pid) + `, hastack apply\)`)
	if !re.MatchString(out) {
		t.Errorf("the refusal does not name the holder (pid %d) at %s:\n%s", holder.cmd.Process.Pid, where, out)
	}
	for _, s := range []string{"Plan:", ": done", "FAILED"} {
		if strings.Contains(out, s) {
			t.Errorf("the refused run printed %q: it went on", s)
		}
	}
	if !strings.Contains(out, "nothing was changed on any node") {
		t.Error("the refusal does not say that nothing was changed")
	}
}

// serviceActions counts the service starts and restarts r reported on node.
func (r *run) serviceActions(node, unit string) int {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(node) + `: \* service:` + regexp.QuoteMeta(strings.TrimSuffix(unit, ".service")) + `: done`)
	return len(re.FindAllString(r.out.String(), -1))
}

// unitStarts counts, per "node unit", the starts in the lab's unit logs.
func (c *cluster) unitStarts() map[string]int {
	m := map[string]int{}
	for _, n := range c.lab.Nodes {
		files, _ := filepath.Glob(filepath.Join(n.Dir, "log", "lab", "*.log"))
		for _, p := range files {
			b, _ := os.ReadFile(p)
			m[n.Name+" "+strings.TrimSuffix(filepath.Base(p), ".log")] = bytes.Count(b, []byte(" starting: "))
		}
	}
	return m
}

// redisConfs is every node's Redis config with its mtime.
func (c *cluster) redisConfs() map[string]string {
	m := map[string]string{}
	for _, n := range c.lab.Nodes {
		out, _ := c.exec(n.Name, "sh", "-c", "stat -c %y /opt/aspera/etc/redis/aspera_31415.conf; cat /opt/aspera/etc/redis/aspera_31415.conf")
		m[n.Name] = out
	}
	return m
}

// eventually runs the sh command on node until it succeeds (for a minute).
func (c *cluster) eventually(node, cmd string) {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := c.exec(node, "sh", "-c", cmd)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: %s still fails: %v %s", node, cmd, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer that a running command writes while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
