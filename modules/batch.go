package modules

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// A batch is work that several resources of one node share and one command
// does: every package a node's package resources of a phase miss goes into
// one apt-get. Each member keeps its own change (the plan names what each
// resource installs); the first member to join shows the command, and the
// first one applied runs it for all of them.
type batch struct {
	command func(args []string) string // the command line for all members' args

	mu      sync.Mutex
	members []string            // resource IDs, in the order they joined
	args    map[string][]string // by member
	shown   *Change             // the first member's change, which shows the command
	once    sync.Once
	err     error
}

// batches are a node's batches by key (NodeFacts.batch).
type batches struct {
	mu sync.Mutex
	m  map[string]*batch
}

// batch returns the node's batch of a key, made with command the first
// time.
func (nf *NodeFacts) batch(key string, command func([]string) string) *batch {
	if nf.batches == nil {
		nf.batches = &batches{}
	}
	bs := nf.batches
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.m == nil {
		bs.m = map[string]*batch{}
	}
	b := bs.m[key]
	if b == nil {
		b = &batch{command: command, args: map[string][]string{}}
		bs.m[key] = b
	}
	return b
}

// join adds resource id with its args and change c to the batch, and gives
// c the closure that runs the batch. The first member's change shows the
// command line for every member; the others say whose it is. A resource
// diffed again (a second plan from the same facts) takes its old place.
func (b *batch) join(id string, args []string, c *Change, run func(ctx context.Context, h host.Host, cmd string) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !slices.Contains(b.members, id) {
		b.members = append(b.members, id)
	}
	b.args[id] = args
	if b.members[0] == id {
		b.shown = c
	} else {
		c.Summary += " (with " + b.members[0] + ", in one command)"
		c.Commands = nil
	}
	b.shown.Commands = []string{b.command(b.allArgs())}
	c.apply = func(ctx context.Context, h host.Host) error {
		b.once.Do(func() {
			b.mu.Lock()
			cmd := b.command(b.allArgs())
			b.mu.Unlock()
			b.err = run(ctx, h, cmd)
		})
		return b.err
	}
}

// allArgs is every member's args, in the order they joined, once each.
func (b *batch) allArgs() []string {
	var out []string
	for _, id := range b.members {
		for _, a := range b.args[id] {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// quoteAll quotes each word for sh.
func quoteAll(ws []string) string {
	q := make([]string, len(ws))
	for i, w := range ws {
		q[i] = Quote(w)
	}
	return strings.Join(q, " ")
}

// runSteps runs cmds one after the other in one exec, stopping at the first
// that fails, as one run each would: the error is run's for that command
// (its command line, exit code and its own output). Each exec is a session,
// a login shell and a wrapper on the node; on a 31-node apply the saved
// ones are seconds of the nodes' CPU. stdin is the first command's; the
// others read nothing. Each command runs in a subshell, so an exit or a cd
// in one ends or moves only that one.
func runSteps(ctx context.Context, h host.Host, cmds []string, stdin []byte, sec secret.Secret) error {
	if len(cmds) == 1 {
		_, err := run(ctx, h, cmds[0], stdin, sec)
		return err
	}
	for _, c := range cmds {
		if strings.Contains(c, "@@hastack:") {
			return fmt.Errorf("hastack bug: a secret placeholder in a command line")
		}
	}
	var b strings.Builder
	for i, c := range cmds {
		if i > 0 {
			// A mark on both streams: what follows is this step's output.
			fmt.Fprintf(&b, "printf '\\n%s%d\\n'; printf '\\n%s%d\\n' >&2\n", stepMark, i, stepMark, i)
		}
		in := ""
		if i > 0 {
			in = " </dev/null"
		}
		fmt.Fprintf(&b, "(\n%s\n)%s || exit $?\n", c, in)
	}
	res, err := run(ctx, h, b.String(), stdin, sec)
	if err == nil || res.Code == 0 {
		return err
	}
	i, stderr := lastStep(res.Stderr)
	_, stdout := lastStep(res.Stdout)
	if i >= len(cmds) {
		i = len(cmds) - 1
	}
	msg := strings.TrimSpace(string(stderr))
	if msg == "" {
		msg = strings.TrimSpace(string(stdout))
	}
	return fmt.Errorf("%s: exit %d: %s", secret.Mask(cmds[i]), res.Code, clip(mask(msg, sec)))
}

const stepMark = "hastack-step "

// lastStep finds the last step mark in out: that step's number and its
// output after the mark (step 0 and all of out when there is none).
func lastStep(out []byte) (int, []byte) {
	out = append([]byte{'\n'}, out...)
	at := bytes.LastIndex(out, []byte("\n"+stepMark))
	if at < 0 {
		return 0, out[1:]
	}
	rest := out[at+1+len(stepMark):]
	line, after, _ := bytes.Cut(rest, []byte("\n"))
	n, err := strconv.Atoi(string(line))
	if err != nil || n < 0 {
		return 0, out[1:]
	}
	return n, after
}
