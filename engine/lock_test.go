package engine

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/lock"
)

// dirHost is the local host with a lock folder of its own per node name,
// so that one machine stands in for several nodes. It notes the order in
// which nodes are told to take their lock (the "go" line on stdin).
type dirHost struct {
	host.Host
	base  string
	mu    *sync.Mutex
	asked *[]string
}

func (d dirHost) Start(ctx context.Context, cmd string) (host.Process, error) {
	q := "'" + d.base + "'"
	p, err := d.Host.(host.Starter).Start(ctx, strings.Replace(cmd, q, "'"+filepath.Join(d.base, d.Name())+"'", 1))
	if err != nil {
		return nil, err
	}
	return notedProcess{p, d}, nil
}

type notedProcess struct {
	host.Process
	d dirHost
}

func (p notedProcess) Stdin() io.WriteCloser { return notedStdin{p.Process.Stdin(), p.d} }

type notedStdin struct {
	io.WriteCloser
	d dirHost
}

func (w notedStdin) Write(b []byte) (int, error) {
	w.d.mu.Lock()
	*w.d.asked = append(*w.d.asked, w.d.Name())
	w.d.mu.Unlock()
	return w.WriteCloser.Write(b)
}

// lockRun is one run's attempt to lock the cluster, every node at once.
type lockRun struct {
	lk    *clusterLock
	errs  map[string]error
	asked []string
}

func tryLockCluster(t *testing.T, cl *config.Cluster, o *LockOptions, deadline time.Time) (*lockRun, error) {
	t.Helper()
	lk, err := lockLocal(context.Background(), cl, o, deadline)
	if err != nil {
		return nil, err
	}
	r := &lockRun{lk: lk, errs: map[string]error{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	// Nodes become ready in the config's order, reversed: the lock order
	// must not depend on it.
	for i := len(cl.Nodes) - 1; i >= 0; i-- {
		n := cl.Nodes[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := dirHost{Host: host.Local(n.Name), base: o.NodeDir, mu: &mu, asked: &r.asked}
			err := lk.node(context.Background(), n.Name, h, nil)
			mu.Lock()
			r.errs[n.Name] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	return r, lk.failure()
}

// The lock logic: nodes are locked in the order of their addresses; a
// second run is refused at the first node, names the holder, and asks no
// other node; a run of the same controller is refused by the local lock;
// -lock-timeout waits for the holder and then gets the lock.
func TestClusterLock(t *testing.T) {
	cl := &config.Cluster{Name: "transfer", Nodes: []config.Node{
		{Name: "n1", IP: "10.0.0.3", SSH: config.SSH{Host: "10.0.0.3"}},
		{Name: "n2", IP: "10.0.0.1", SSH: config.SSH{Host: "10.0.0.1"}},
		{Name: "n3", IP: "10.0.0.2", SSH: config.SSH{Host: "10.0.0.2"}},
	}}
	nodeDir := t.TempDir()
	optsFor := func(localDir, cmd string) *LockOptions {
		return &LockOptions{Holder: lock.NewHolder(cmd), LocalDir: localDir, NodeDir: nodeDir}
	}
	ctlA, ctlB := t.TempDir(), t.TempDir()

	a := optsFor(ctlA, "hastack apply")
	runA, err := tryLockCluster(t, cl, a, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(runA.asked, " "); got != "n2 n3 n1" {
		t.Fatalf("nodes locked in the order %s, want their addresses' order n2 n3 n1", got)
	}

	// Another controller: refused at n2, naming A; n3 and n1 never asked.
	runB, err := tryLockCluster(t, cl, optsFor(ctlB, "hastack apply"), time.Time{})
	var he *lock.HeldError
	if !errors.As(err, &he) || he.Where != "node n2" || he.Holder.RunID != a.Holder.RunID || he.Holder.PID != a.Holder.PID {
		t.Fatalf("second controller: %v", err)
	}
	if got := strings.Join(runB.asked, " "); got != "n2" {
		t.Errorf("the refused run asked %s, want only n2", got)
	}
	if !errors.Is(runB.errs["n1"], errNotLocked) || !errors.Is(runB.errs["n3"], errNotLocked) {
		t.Errorf("the nodes after the refusal: %v", runB.errs)
	}
	runB.lk.release()

	// The same controller: refused by the local lock, before any node.
	_, err = tryLockCluster(t, cl, optsFor(ctlA, "hastack plan -out"), time.Time{})
	if !errors.As(err, &he) || !strings.Contains(he.Where, "this machine") || he.Holder.RunID != a.Holder.RunID {
		t.Fatalf("same controller: %v", err)
	}

	// -lock-timeout: waits, is told why, and gets every lock once A is done.
	c := optsFor(ctlB, "hastack apply")
	c.Timeout = time.Minute
	waiting := make(chan *lock.HeldError, 4)
	c.Waiting = func(he *lock.HeldError) { waiting <- he }
	done := make(chan error, 1)
	var runC *lockRun
	go func() {
		var err error
		runC, err = tryLockCluster(t, cl, c, time.Now().Add(c.Timeout))
		done <- err
	}()
	if he := <-waiting; he.Holder.RunID != a.Holder.RunID {
		t.Fatalf("waiting for %+v, want A", he.Holder)
	}
	runA.lk.release()
	if err := <-done; err != nil {
		t.Fatalf("after the holder released: %v", err)
	}
	if len(runC.lk.nodes) != 3 {
		t.Fatalf("the waiting run holds %d node locks, want 3", len(runC.lk.nodes))
	}
	runC.lk.release()
}
