package modules

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// The steps of one exec run in order, stop at the first failure, and fail
// as that command alone would: its line, its exit code, its own output.
func TestRunSteps(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	h := host.Local("local")
	step := func(name string) string { return "echo " + name + " >>" + log }
	ctx := context.Background()

	err := runSteps(ctx, h, []string{step("a") + "; echo noise-a >&2", "echo out-b; echo err-b >&2; " + step("b") + "; exit 3", step("c")}, nil, secret.Secret{})
	if err == nil {
		t.Fatal("a failing step was not an error")
	}
	want := "echo out-b; echo err-b >&2; echo b >>" + log + "; exit 3: exit 3: err-b"
	if err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}
	if got, _ := os.ReadFile(log); string(got) != "a\nb\n" {
		t.Errorf("steps ran %q, want a then b, not c", got)
	}

	// No stderr: the step's stdout says why. An exit or cd in a step ends
	// or moves only that step; stdin is the first step's.
	os.Remove(log)
	err = runSteps(ctx, h, []string{"cat >" + log + "; cd /; exit 0", "test -s " + log + " && " + step("b"), "echo why; false"}, []byte("in\n"), secret.Secret{})
	if err == nil || err.Error() != "echo why; false: exit 1: why" {
		t.Errorf("error %v", err)
	}
	if got, _ := os.ReadFile(log); string(got) != "in\nb\n" {
		t.Errorf("log %q, want the first step's stdin, then b", got)
	}
	if err := runSteps(ctx, h, []string{"true", "true"}, nil, secret.Secret{}); err != nil {
		t.Errorf("passing steps: %v", err)
	}
	// The password never shows in the error.
	sec := secret.New("s3cret-pw")
	err = runSteps(ctx, h, []string{"cat >&2; false", "true"}, []byte("s3cret-pw"), sec)
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") || !strings.HasPrefix(err.Error(), "cat >&2; false: exit 1: ") {
		t.Errorf("error %v", err)
	}
}

// failingHost fails every command with code, as a node whose systemctl
// fails would; it records the command lines.
type failingHost struct {
	recorder
	code   int
	stderr string
}

func (f *failingHost) Run(ctx context.Context, cmd string, stdin io.Reader) (host.Result, error) {
	f.recorder.Run(ctx, cmd, stdin)
	return host.Result{Code: f.code, Stderr: []byte(f.stderr)}, nil
}
