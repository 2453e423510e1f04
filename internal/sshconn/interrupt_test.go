package sshconn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"hastack.dev/hastack/internal/sshtest"
)

// runHung runs a script whose child hangs (sleep 1000), stops it with stop
// once the child runs, and returns the child's pid and Run's error.
func runHung(t *testing.T, c *Conn, ctx context.Context, stop func()) (int, error) {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := fmt.Sprintf("sleep 1000 &\necho $! > %s\nwait\n", ShellQuote(pidFile))
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, cmd, nil)
		done <- err
	}()
	pid := 0
	for deadline := time.Now().Add(10 * time.Second); pid == 0; time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Now().After(deadline) {
			t.Fatal("the remote command did not start")
		}
	}
	stop()
	select {
	case err := <-done:
		return pid, err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the stop")
		return 0, nil
	}
}

// assertGone fails unless pid ends soon (a zombie counts as ended: this
// machine's init may be slow to reap orphans).
func assertGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if i := strings.LastIndexByte(string(b), ')'); err == nil && i > 0 && strings.HasPrefix(string(b[i+1:]), " Z") {
			return
		}
		if time.Now().After(deadline) {
			killPid(pid)
			t.Fatalf("the remote command's child (pid %d) still runs after the interrupt", pid)
		}
	}
}

func killPid(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

// interruptCases stop a hung command by cancelling Run's ctx, and by closing
// the connection as a second Ctrl-C does (apply runs commands under a ctx
// that the first Ctrl-C does not cancel).
func testInterrupt(t *testing.T, tg Target, cfg Config) {
	t.Run("cancel", func(t *testing.T) {
		c := dial(t, tg, cfg)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pid, err := runHung(t, c, ctx, cancel)
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), tg.Name) {
			t.Fatalf("want a cancellation naming the node, got %v", err)
		}
		assertGone(t, pid)
	})
	t.Run("close", func(t *testing.T) {
		c := dial(t, tg, cfg)
		pid, err := runHung(t, c, context.Background(), func() { c.Close() })
		if err == nil {
			t.Fatal("Run succeeded on a closed connection")
		}
		assertGone(t, pid)
	})
}

func TestRunInterruptStopsRemoteCommand(t *testing.T) {
	_, tg, cfg := setup(t, sshtest.Options{})
	testInterrupt(t, tg, cfg)
}

func TestOpenSSHRunInterruptStopsRemoteCommand(t *testing.T) {
	_, tg, cfg := realSSHD(t)
	testInterrupt(t, tg, cfg)
}

// The wrapper's pid line is taken out of stderr wherever it comes in the
// first lines and however the writes split it; other lines stay.
func TestPidWriter(t *testing.T) {
	for _, tc := range []struct {
		writes []string
		pid    int
		rest   string
	}{
		{[]string{"hastack-pid 42\nerr\n"}, 42, "err\n"},
		{[]string{"hast", "ack-pid 4", "2\ne", "rr\n"}, 42, "err\n"},
		{[]string{"motd line\r\n", "hastack-pid 7\n", "x"}, 7, "motd line\r\nx"},
		{[]string{"no marker\n", "half"}, 0, "no marker\nhalf"},
		{[]string{strings.Repeat("x", 5000)}, 0, strings.Repeat("x", 5000)},
	} {
		var b strings.Builder
		pw := &pidWriter{w: &b}
		for _, w := range tc.writes {
			pw.Write([]byte(w))
		}
		pw.flush()
		if pw.remotePid() != tc.pid || b.String() != tc.rest {
			t.Errorf("%q: pid %d stderr %q, want %d %q", tc.writes, pw.remotePid(), b.String(), tc.pid, tc.rest)
		}
	}
}
