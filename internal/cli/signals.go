package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// ExitInterrupted is the exit code after a second Ctrl-C: 128 + SIGINT, as a
// shell reports a command killed by it.
const ExitInterrupted = 130

// exit ends the process; a variable so that tests can see the call.
var exit = os.Exit

// abortWait bounds the clean-up after a second interrupt (closing the
// connections waits for writes in progress and stops remote commands).
const abortWait = 10 * time.Second

// interrupts is how a command answers Ctrl-C (SIGINT) and SIGTERM, as
// Terraform does. The first asks for a graceful stop: the context is
// cancelled, the command finishes what it must finish safely, and stderr
// says so. The second stops at once: the abort functions run (they close
// the SSH connections, which stops the commands still running on the nodes
// and lets writes in progress finish, so no file is left half-written),
// stderr says what may be left, and the process exits 130. A third, during
// that clean-up, exits at once.
type interrupts struct {
	env    *Env
	name   string // the command, for messages
	ch     chan os.Signal
	cancel context.CancelFunc

	mu     sync.Mutex
	first  string // what the first interrupt does
	left   string // what a stop at once may leave behind
	aborts []func()
}

// onInterrupt starts watching for interrupts. first says what the first one
// does ("stopping; nothing was changed"), left what a stop at once may
// leave. Call stop when the command ends.
func onInterrupt(env *Env, name, first, left string) (context.Context, *interrupts) {
	ctx, cancel := context.WithCancel(context.Background())
	in := &interrupts{env: env, name: name, ch: make(chan os.Signal, 3), cancel: cancel, first: first, left: left}
	signal.Notify(in.ch, os.Interrupt, syscall.SIGTERM)
	go in.watch()
	return ctx, in
}

// changing updates the messages once the command starts to change things.
func (in *interrupts) changing(first, left string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.first, in.left = first, left
}

// atAbort adds a clean-up for a stop at once (e.g. closing connections).
func (in *interrupts) atAbort(f func()) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.aborts = append(in.aborts, f)
}

// stop ends the watch: later signals get their default action again.
func (in *interrupts) stop() {
	signal.Stop(in.ch)
	in.cancel()
}

func (in *interrupts) watch() {
	if _, ok := <-in.ch; !ok {
		return
	}
	in.mu.Lock()
	first := in.first
	in.mu.Unlock()
	fmt.Fprintf(in.env.Stderr, "\nhastack %s: interrupted: %s. Press Ctrl-C again to stop at once.\n", in.name, first)
	in.cancel()

	<-in.ch
	in.mu.Lock()
	left, aborts := in.left, in.aborts
	in.mu.Unlock()
	fmt.Fprintf(in.env.Stderr, "\nhastack %s: second interrupt: stopping now.\n", in.name)
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, f := range aborts {
			wg.Add(1)
			go func() { defer wg.Done(); f() }()
		}
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-in.ch:
	case <-time.After(abortWait):
	}
	fmt.Fprintf(in.env.Stderr, "hastack %s: interrupted; %s\n", in.name, left)
	flush(in.env)
	exit(ExitInterrupted)
}

// readLine reads one line from r, or gives up when ctx ends (a Ctrl-C at a
// prompt). The reading goroutine may stay blocked; the command is ending.
func readLine(ctx context.Context, r io.Reader) (string, error) {
	type result struct {
		line string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		got <- result{line, err}
	}()
	select {
	case res := <-got:
		return res.line, res.err
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

// OnInterrupt is onInterrupt for a command outside this package: stop
// ends the handling.
func OnInterrupt(env *Env, name, first, left string) (ctx context.Context, stop func()) {
	ctx, in := onInterrupt(env, name, first, left)
	return ctx, in.stop
}
