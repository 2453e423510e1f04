package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"hastack.dev/hastack/internal/lab"
)

// A plain stack (no driver: docs/stacks.md) on 11 and 201 lab nodes: the
// generic engine's scale. Each op runs the built binary, `hastack plan
// -detailed-exitcode DIR`, as a user would (load and validate, connect,
// gather, diff, print), and the benchmark reports the child's peak RSS
// (wait4's ru_maxrss: the process's VmHWM) and its CPU. As root:
//
//	flock /tmp/hastack-lab.lock go test ./bench -run '^$' -bench PlainConverged201 -benchtime 5x -timeout 30m
func BenchmarkPlainConverged11(b *testing.B)  { benchPlain(b, 11) }
func BenchmarkPlainConverged201(b *testing.B) { benchPlain(b, 201) }

func benchPlain(b *testing.B, n int) {
	bin := buildHastack(b)
	l := lab.Start(b, n)
	nodes := make([]plainNode, len(l.Nodes))
	for i, nd := range l.Nodes {
		nodes[i] = plainNode{nd.Name, nd.IP}
	}
	dir := b.TempDir()
	if err := writePlainStack(dir, nodes); err != nil {
		b.Fatal(err)
	}
	env := append(os.Environ(), "HASTACK_LAB="+l.Dir, "XDG_CACHE_HOME="+b.TempDir())
	if out, _, err := run(b, bin, env, "apply", "-auto-approve", dir); err != nil {
		b.Fatalf("apply: %v\n%s", err, tail(out))
	}
	if out, _, err := run(b, bin, env, "plan", "-detailed-exitcode", dir); err != nil {
		b.Fatalf("not converged after apply: %v\n%s", err, tail(out))
	}
	// With the render cache the plan before filled, and without one.
	b.Run("render-cache", func(b *testing.B) { timePlainPlans(b, bin, env, dir) })
	b.Run("no-render-cache", func(b *testing.B) {
		timePlainPlans(b, bin, append(env[:len(env):len(env)], "HASTACK_RENDER_CACHE=off"), dir)
	})
}

// timePlainPlans times converged plans (exit 0: no changes) and reports
// the largest peak RSS and the mean CPU of the plan processes.
func timePlainPlans(b *testing.B, bin string, env []string, dir string) {
	var peakKB int64
	var cpu time.Duration
	for b.Loop() {
		out, ru, err := run(b, bin, env, "plan", "-detailed-exitcode", dir)
		if err != nil {
			b.Fatalf("plan of a converged stack: %v\n%s", err, tail(out))
		}
		peakKB = max(peakKB, ru.Maxrss)
		cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ReportMetric(float64(peakKB)/1024, "peak-RSS-MB")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// run runs the binary and returns its output and resource usage.
func run(b *testing.B, bin string, env []string, args ...string) ([]byte, *syscall.Rusage, error) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if ru == nil {
		ru = &syscall.Rusage{}
	}
	return out.Bytes(), ru, err
}

// buildHastack builds cmd/hastack once per benchmark, unless
// HASTACK_BENCH_BIN names a binary already built (of another commit).
func buildHastack(b *testing.B) string {
	b.Helper()
	if bin := os.Getenv("HASTACK_BENCH_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(b.TempDir(), "hastack")
	cmd := exec.Command("go", "build", "-o", bin, "hastack.dev/hastack/cmd/hastack")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// tail is the last lines of a command's output, for a failure message.
func tail(out []byte) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}
