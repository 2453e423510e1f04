package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/lock"
)

// check's drills connect through ConnectClusterLocked: while another run
// holds the cluster, a locked connect is refused naming the holder and
// leaves nothing open; with no lock options it connects as ConnectCluster
// (a plain check); once the holder is gone it gets every node's lock and
// unlock lets them go.
func TestConnectClusterLocked(t *testing.T) {
	cl := &config.Cluster{Name: "transfer", Nodes: []config.Node{
		{Name: "n1", IP: "10.0.0.1", SSH: config.SSH{Host: "10.0.0.1"}},
		{Name: "n2", IP: "10.0.0.2", SSH: config.SSH{Host: "10.0.0.2"}},
		{Name: "n3", IP: "10.0.0.3", SSH: config.SSH{Host: "10.0.0.3"}},
	}}
	nodeDir := t.TempDir()
	apply := &LockOptions{Holder: lock.NewHolder("hastack apply"), LocalDir: t.TempDir(), NodeDir: nodeDir}
	held, err := tryLockCluster(t, cl, apply, time.Time{})
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var asked []string
	opts := Options{Connect: func(ctx context.Context, n NodeSpec) (host.Host, error) {
		return dirHost{Host: host.Local(n.Name), base: nodeDir, mu: &mu, asked: &asked}, nil
	}}
	drill := &LockOptions{Holder: lock.NewHolder("hastack check -replication"), LocalDir: t.TempDir(), NodeDir: nodeDir}

	opts.Lock = drill
	hosts, unlock, err := ConnectClusterLocked(context.Background(), cl, opts)
	var he *lock.HeldError
	if !errors.As(err, &he) || he.Where != "node n1" || he.Holder.RunID != apply.Holder.RunID {
		t.Fatalf("a drill during an apply: hosts %v, err %v; want refused at n1 naming the apply", hosts, err)
	}
	if hosts != nil || unlock != nil {
		t.Fatalf("a refused connect returned hosts %v", hosts)
	}

	opts.Lock = nil // a plain check
	hosts, unlock, err = ConnectClusterLocked(context.Background(), cl, opts)
	if err != nil || len(hosts) != 3 {
		t.Fatalf("a check with no lock during an apply: %d hosts, %v", len(hosts), err)
	}
	unlock()
	for _, h := range hosts {
		h.Close()
	}

	held.lk.release()
	opts.Lock = drill
	hosts, unlock, err = ConnectClusterLocked(context.Background(), cl, opts)
	if err != nil || len(hosts) != 3 {
		t.Fatalf("a drill after the apply: %d hosts, %v", len(hosts), err)
	}
	// The drill holds the cluster now: an apply is refused.
	other, err := tryLockCluster(t, cl, &LockOptions{Holder: lock.NewHolder("hastack apply"), LocalDir: t.TempDir(), NodeDir: nodeDir}, time.Time{})
	if !errors.As(err, &he) || he.Holder.RunID != drill.Holder.RunID {
		t.Fatalf("an apply during the drill: %v, want refused naming the drill", err)
	}
	other.lk.release()
	unlock()
	for _, h := range hosts {
		h.Close()
	}
	again, err := tryLockCluster(t, cl, apply, time.Time{})
	if err != nil {
		t.Fatalf("after the drill's unlock: %v", err)
	}
	again.lk.release()
}
