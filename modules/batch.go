package modules

import (
	"context"
	"slices"
	"strings"
	"sync"

	"hastack.dev/hastack/internal/host"
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
