package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/lock"
)

// LockOptions make a session lock every cluster it plans for, as
// Terraform's state lock: apply and plan -out set them, a plan that is only
// shown does not. See internal/lock and docs/plan.md.
type LockOptions struct {
	Holder lock.Holder
	// Timeout is how long to wait for a lock another run holds (0: refuse
	// at once), as Terraform's -lock-timeout.
	Timeout time.Duration
	// LocalDir holds this machine's lock files; default lock.LocalDir().
	LocalDir string
	// NodeDir is the lock's folder on every node; default lock.NodeDir.
	NodeDir string
	// Waiting is told when a lock is busy and the run waits for it.
	Waiting func(*lock.HeldError)
}

// clusterLock is one cluster's locks: this machine's, taken before
// connecting, and every node's, each taken before the node is read. Node
// locks are taken one after the other in the order of the nodes'
// addresses, whatever order the config lists them in, so two runs never
// each hold part of a cluster: the one that gets the first node gets all.
type clusterLock struct {
	opts     *LockOptions
	deadline time.Time
	local    *lock.Local

	turn map[string]int  // node name -> its place in the order
	done []chan struct{} // done[i] closes when node i's turn is over

	mu    sync.Mutex
	nodes []*lock.Node
	err   error // the first failure to lock a node
}

// errNotLocked marks the nodes after a node that could not be locked: they
// are left alone and the first failure is what the run reports.
var errNotLocked = errors.New("not locked: an earlier node's lock failed")

// nodeAddr is how a node is reached, for the lock's order and name.
func nodeAddr(n config.Node) string {
	port := n.SSH.Port
	if port == 0 {
		port = 22
	}
	return n.IP + "@" + net.JoinHostPort(n.SSH.Host, strconv.Itoa(port))
}

// lockLocal takes cl's lock on this machine, waiting until deadline.
func lockLocal(ctx context.Context, cl *config.Cluster, o *LockOptions, deadline time.Time) (*clusterLock, error) {
	c := &clusterLock{opts: o, deadline: deadline, turn: map[string]int{}}
	type named struct{ name, addr string }
	var ns []named
	var addrs []string
	for _, n := range cl.Nodes {
		ns = append(ns, named{n.Name, nodeAddr(n)})
		addrs = append(addrs, nodeAddr(n))
	}
	sort.SliceStable(ns, func(i, j int) bool { return ns[i].addr < ns[j].addr })
	for i, n := range ns {
		c.turn[n.name] = i
		c.done = append(c.done, make(chan struct{}))
	}
	dir := o.LocalDir
	if dir == "" {
		var err error
		if dir, err = lock.LocalDir(); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", cl.Name, err)
		}
	}
	path := lock.LocalPath(dir, cl.Name, addrs)
	err := lock.Retry(ctx, deadline, func() error {
		l, err := lock.TryLocal(path, o.Holder)
		c.local = l
		return err
	}, o.Waiting)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cl.Name, err)
	}
	return c, nil
}

// node locks the node name once the nodes before it have had their turn.
// Its lock command is started at once, so only taking the lock itself
// (one round trip) waits for the others. connErr is the node's connect
// error: a node that could not be reached still ends its turn. It returns
// connErr, or why the node is not locked.
func (c *clusterLock) node(ctx context.Context, name string, h host.Host, connErr error) error {
	i, ok := c.turn[name]
	if !ok {
		return fmt.Errorf("%s: not a node of the locked cluster", name)
	}
	defer close(c.done[i])
	dir := c.opts.NodeDir
	if dir == "" {
		dir = lock.NodeDir
	}
	var ready *lock.Ready
	var readyErr error
	if connErr == nil {
		ready, readyErr = lock.StartNode(ctx, h, dir, c.opts.Holder)
	}
	defer func() { ready.Abort() }()
	if i > 0 {
		select {
		case <-c.done[i-1]:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	if connErr != nil {
		return connErr
	}
	c.mu.Lock()
	failed := c.err != nil
	c.mu.Unlock()
	if failed {
		return errNotLocked
	}
	err := readyErr
	if err == nil {
		err = lock.Retry(ctx, c.deadline, func() error {
			if ready == nil { // a retry: the last try used it up
				var err error
				if ready, err = lock.StartNode(ctx, h, dir, c.opts.Holder); err != nil {
					return err
				}
			}
			l, err := ready.Take(ctx)
			ready = nil
			if err == nil {
				c.mu.Lock()
				c.nodes = append(c.nodes, l)
				c.mu.Unlock()
			}
			return err
		}, c.opts.Waiting)
	}
	if err != nil {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
	}
	return err
}

// failure is the first node lock that failed, or nil.
func (c *clusterLock) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// release lets go of every node's lock, then this machine's.
func (c *clusterLock) release() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.Release()
		}()
	}
	wg.Wait()
	c.local.Release()
}
