package engine

import (
	"context"
	"fmt"
	"sort"
	"time"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
)

// ConnectClusterLocked is ConnectCluster under cl's lock when opts.Lock is
// set, taken as Prepare takes it for apply: this machine's lock before
// connecting, then every node's, one after the other in the order of
// their addresses. check's drills use it, since they change the cluster.
//
// unlock releases the locks; call it before closing the hosts (a node's
// lock also ends with its connection). On error nothing is held and no
// connection is left open; a lock another run holds is a *lock.HeldError
// in the chain, naming the holder.
func ConnectClusterLocked(ctx context.Context, cl *config.Cluster, opts Options) (hosts map[string]host.Host, unlock func(), err error) {
	if opts.Lock == nil {
		hosts, err := ConnectCluster(ctx, cl, opts)
		return hosts, func() {}, err
	}
	var deadline time.Time // zero: refuse a held lock at once
	if opts.Lock.Timeout > 0 {
		deadline = time.Now().Add(opts.Lock.Timeout)
	}
	lk, err := lockLocal(ctx, cl, opts.Lock, deadline)
	if err != nil {
		return nil, nil, err
	}
	hosts, errs, _, _ := connectAndGather(ctx, nodeSpecs(cl), opts, lk.node, nil)
	lockErr := lk.failure()
	if lockErr == nil && len(errs) == 0 {
		return hosts, lk.release, nil
	}
	lk.release()
	for _, h := range hosts {
		h.Close()
	}
	if lockErr != nil {
		return nil, nil, fmt.Errorf("cluster %s: %w", cl.Name, lockErr)
	}
	var ne NodeErrors
	for name, e := range errs {
		ne = append(ne, NodeError{cl.Name, name, e})
	}
	sort.Slice(ne, func(i, j int) bool { return ne[i].Node < ne[j].Node })
	return nil, nil, ne
}
