package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// signalsChild is the child process of TestSecondInterruptExits: a command
// whose step hangs and ignores its context, as apply's change in progress
// does (the engine runs it under context.WithoutCancel).
func signalsChild() {
	env := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	ctx, sig := onInterrupt(env, "apply", "finishing the changes in progress, then stopping", "a change in progress may be half-done.")
	sig.atAbort(func() { fmt.Println("abort: connections closed") })
	fmt.Println("ready")
	<-ctx.Done()
	fmt.Println("graceful stop asked; the step goes on")
	select {} // the hung step
}

func TestSecondInterruptExits(t *testing.T) {
	if os.Getenv("HASTACK_SIGNALS_CHILD") == "1" {
		signalsChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondInterruptExits$")
	cmd.Env = append(os.Environ(), "HASTACK_SIGNALS_CHILD=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// A child that swallows the second interrupt would hang the test.
	time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	lines := bufio.NewScanner(out)
	expect := func(want string) {
		t.Helper()
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("child said %q, want %q (stderr: %s)", lines.Text(), want, stderr.String())
		}
	}
	expect("ready")
	cmd.Process.Signal(syscall.SIGINT)
	expect("graceful stop asked; the step goes on")
	cmd.Process.Signal(syscall.SIGINT)
	expect("abort: connections closed")
	io.Copy(io.Discard, out)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExitInterrupted {
		t.Fatalf("child ended with %v, want exit %d; stderr:\n%s", err, ExitInterrupted, stderr.String())
	}
	for _, want := range []string{
		"hastack apply: interrupted: finishing the changes in progress, then stopping. Press Ctrl-C again to stop at once.",
		"hastack apply: second interrupt: stopping now.",
		"hastack apply: interrupted; a change in progress may be half-done.",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

// A Ctrl-C at apply's prompt ends the wait for an answer.
func TestReadLineCancelled(t *testing.T) {
	r, w := io.Pipe() // a terminal nobody types into
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	if line, err := readLine(ctx, r); !errors.Is(err, context.Canceled) || line != "" {
		t.Fatalf("got %q %v", line, err)
	}
	if line, err := readLine(context.Background(), strings.NewReader("yes\n")); err != nil || line != "yes\n" {
		t.Fatalf("got %q %v", line, err)
	}
}
