package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/internal/sshconn"
)

// Options say how to reach the nodes.
type Options struct {
	SSH sshconn.Config
	// Connect overrides how a node is reached (tests, the local connector).
	Connect func(ctx context.Context, n NodeSpec) (host.Host, error)
	// Clusters limits the run to these cluster names (all when empty).
	Clusters []string
	// AllowPartial plans (and so applies) for the nodes that could be read
	// when others cannot be reached: for recovery only. Rollout gates still
	// decide on all the system's nodes (a majority is of them all).
	AllowPartial bool
	// PlanSalt is the fingerprint salt of a saved plan being applied; a
	// new plan gets a random one.
	PlanSalt []byte
	// NoFingerprints leaves the nodes' fingerprints out, for a plan that is
	// only shown: their key costs scrypt's tens of milliseconds of CPU.
	NoFingerprints bool
	// RenderCache, when set, keeps rendered stacks between runs.
	RenderCache *RenderCache
	// Trace, when set, is told how long each step took (HASTACK_TIMING=1).
	Trace func(step string, d time.Duration)
	// Lock, when set, locks each cluster for the session's life: this
	// machine's lock before connecting, each node's before reading it
	// (engine/lock.go). Session.Close releases them.
	Lock *LockOptions
}

// cached names a render step for the trace.
func cached(step string, hit bool) string {
	if hit {
		return step + " (cached)"
	}
	return step
}

func (o Options) trace(step string, start time.Time) {
	if o.Trace != nil {
		o.Trace(step, time.Since(start))
	}
}

// Session is one run: connections open, facts gathered, plans made.
type Session struct {
	Plans []*Plan
	// Salt keyed the fingerprints (with the password): saved with the plan.
	Salt []byte
	// Unreached lists the nodes left out with Options.AllowPartial.
	Unreached NodeErrors
	hosts     []map[string]host.Host
	locks     []*clusterLock
}

// NodeErrors lists the nodes that could not be reached or read.
type NodeErrors []NodeError

// NodeError is one node's failure.
type NodeError struct {
	Cluster, Node string
	Err           error
}

func (e NodeErrors) Error() string {
	var b strings.Builder
	for i, ne := range e {
		if i > 0 {
			b.WriteString("\n")
		}
		msg := ne.Err.Error()
		if !strings.HasPrefix(msg, ne.Node+":") && !strings.HasPrefix(msg, ne.Node+" ") {
			msg = "node " + ne.Node + ": " + msg
		}
		fmt.Fprintf(&b, "cluster %s: %s", ne.Cluster, msg)
	}
	return b.String()
}

// Prepare connects to every node (one connection each, all in parallel),
// gathers facts, observes each system's live state and diffs. On error the
// session is closed.
func Prepare(ctx context.Context, cfg *config.Config, opts Options) (_ *Session, err error) {
	s := &Session{Salt: opts.PlanSalt}
	if s.Salt == nil {
		s.Salt = make([]byte, 16)
		rand.Read(s.Salt)
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	var nodeErrs NodeErrors
	var lockDeadline time.Time // zero: refuse a held lock at once
	if opts.Lock != nil && opts.Lock.Timeout > 0 {
		lockDeadline = time.Now().Add(opts.Lock.Timeout)
	}
	for _, cl := range cfg.Clusters {
		if len(opts.Clusters) > 0 && !contains(opts.Clusters, cl.Name) {
			continue
		}
		p := &preparer{s: s, cfg: cfg, cl: cl, opts: opts}
		plan, errs, err := p.run(ctx, lockDeadline)
		if err != nil {
			return nil, err
		}
		nodeErrs = append(nodeErrs, errs...)
		if plan != nil {
			s.Plans = append(s.Plans, plan)
		}
	}
	sortNodeErrors(nodeErrs)
	if len(nodeErrs) > 0 && opts.AllowPartial && len(s.Plans) > 0 {
		s.Unreached = nodeErrs
		return s, nil
	}
	if len(nodeErrs) > 0 {
		return nil, nodeErrs
	}
	return s, nil
}

// preparer plans one system of a Prepare.
type preparer struct {
	s    *Session
	cfg  *config.Config
	cl   *config.Cluster
	opts Options
	sys  System
	sec  secret.Secret

	unreached NodeErrors // nodes not reached or read (AllowPartial lets them be)
}

// run plans p's system: lock, render for the driver's guess while
// connecting, gather each node as soon as both are done, observe, render
// again when the live state asks for it (gathering what that render reads
// and the first did not), diff. A nil plan with no error means nodes could
// not be reached or read (errs).
func (p *preparer) run(ctx context.Context, lockDeadline time.Time) (*Plan, NodeErrors, error) {
	var err error
	if p.sys, err = Open(p.cl); err != nil {
		return nil, nil, err
	}
	if p.sec, err = ResolveSecret(p.cl); err != nil {
		return nil, nil, err
	}
	lockNode, err := p.lock(ctx, lockDeadline)
	if err != nil {
		return nil, nil, err
	}
	fpKey := p.fingerprintKey()
	r, hosts, facts, errs, err := p.gatherFirst(ctx, lockNode)
	if err != nil || errs != nil {
		return nil, errs, err
	}
	obs, err := p.sys.Observe(facts)
	if err != nil {
		return nil, errs, fmt.Errorf("%s %s: %w", kindOf(p.cl), p.cl.Name, err)
	}
	if r, err = p.renderFor(r, obs); err != nil {
		return nil, errs, err
	}
	if err := p.regather(ctx, r, hosts, facts); err != nil {
		return nil, errs, err
	}
	t0 := time.Now()
	if len(facts) < len(r.Nodes) {
		r = r.only(facts) // AllowPartial: plan for the nodes that answered
	}
	plan, err := Diff(r, p.sys, obs, facts, p.sec, <-fpKey)
	if err != nil {
		return nil, errs, fmt.Errorf("%s %s: %w", kindOf(p.cl), p.cl.Name, err)
	}
	p.opts.trace("diff", t0)
	return plan, p.unreached, nil
}

// lock takes this machine's lock of the system, when asked, and returns
// how each node is locked (nil: not at all).
func (p *preparer) lock(ctx context.Context, deadline time.Time) (func(ctx context.Context, name string, h host.Host, connErr error) error, error) {
	if p.opts.Lock == nil {
		return nil, nil
	}
	lk, err := lockLocal(ctx, p.cl, p.opts.Lock, deadline)
	if err != nil {
		return nil, err
	}
	p.s.locks = append(p.s.locks, lk)
	return lk.node, nil
}

// fingerprintKey derives the key in the background: scrypt takes tens of
// milliseconds of CPU, spent while the nodes are being reached and read.
func (p *preparer) fingerprintKey() chan []byte {
	fpKey := make(chan []byte, 1)
	if p.opts.NoFingerprints {
		fpKey <- nil
	} else {
		go func() { fpKey <- FingerprintKey(p.sec, p.s.Salt) }()
	}
	return fpKey
}

// gatherFirst renders for the driver's guess while it connects (connecting
// waits on the nodes, rendering works here), and gathers each node as soon
// as it is connected and the render is done: on a loaded machine
// handshakes end far apart. errs is not nil when the nodes that could not
// be reached or read leave nothing to plan.
func (p *preparer) gatherFirst(ctx context.Context, lockNode func(context.Context, string, host.Host, error) error) (
	r *Rendered, hosts map[string]host.Host, facts map[string]*Facts, errs NodeErrors, err error) {
	rendered := make(chan struct{})
	var rerr error
	guess := p.sys.Guess()
	go func() {
		t0 := time.Now()
		var hit bool
		r, hit, rerr = p.opts.RenderCache.Render(p.cfg.Context, p.cl, p.sys, guess)
		p.opts.trace(cached("render", hit), t0)
		close(rendered)
	}()
	t0 := time.Now()
	hosts, cerrs, facts, gerrs := connectAndGather(ctx, nodeSpecs(p.cl), p.opts, lockNode, func(ctx context.Context, name string, h host.Host) (*Facts, error) {
		<-rendered
		if rerr != nil {
			return nil, nil
		}
		n := r.node(name)
		return gatherNode(ctx, n, p.sys.Needs(n), h, p.sec)
	})
	p.opts.trace("connect and gather", t0)
	p.s.hosts = append(p.s.hosts, hosts)
	if len(p.s.locks) > 0 {
		if err := p.s.locks[len(p.s.locks)-1].failure(); err != nil {
			return nil, nil, nil, nil, fmt.Errorf("%s %s: %w", kindOf(p.cl), p.cl.Name, err)
		}
	}
	if rerr != nil {
		return nil, nil, nil, nil, rerr
	}
	for name, e := range cerrs {
		p.unreached = append(p.unreached, NodeError{p.cl.Name, name, e})
	}
	if len(cerrs) > 0 && (!p.opts.AllowPartial || len(hosts) == 0) {
		return nil, nil, nil, p.unreached, nil
	}
	for name, e := range gerrs {
		p.unreached = append(p.unreached, NodeError{p.cl.Name, name, e})
	}
	if len(gerrs) > 0 && (!p.opts.AllowPartial || len(facts) == 0) {
		return nil, nil, nil, p.unreached, nil
	}
	return r, hosts, facts, nil, nil
}

// renderFor renders again when the live state asks for other inputs than
// the guess r was rendered for.
func (p *preparer) renderFor(r *Rendered, obs Observation) (*Rendered, error) {
	if sameInputs(r.Inputs, obs.Inputs) {
		return r, nil
	}
	t0 := time.Now()
	r, hit, err := p.opts.RenderCache.Render(p.cfg.Context, p.cl, p.sys, obs.Inputs)
	if err != nil {
		return nil, err
	}
	p.opts.trace(cached("render again", hit), t0)
	return r, nil
}

// regather reads again, in parallel, every node whose resources in r read
// something the first gather did not: never diff against a fact not read.
func (p *preparer) regather(ctx context.Context, r *Rendered, hosts map[string]host.Host, facts map[string]*Facts) error {
	var todo []NodeSpec
	for _, n := range r.Nodes {
		f := facts[n.Name]
		if f == nil {
			continue
		}
		ok, err := f.covers(n)
		if err != nil {
			return fmt.Errorf("%s %s: node %s: %w", kindOf(p.cl), p.cl.Name, n.Name, err)
		}
		if !ok {
			todo = append(todo, n)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	t0 := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := NodeErrors{}
	for _, n := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := gatherNode(ctx, n, p.sys.Needs(n), hosts[n.Name], p.sec)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, NodeError{p.cl.Name, n.Name, err})
				return
			}
			facts[n.Name] = f
		}()
	}
	wg.Wait()
	p.opts.trace("gather again", t0)
	if len(errs) > 0 {
		sortNodeErrors(errs)
		return errs
	}
	return nil
}

// sameInputs compares two renders' inputs as the stack sees them: as JSON.
func sameInputs(a, b map[string]any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

func sortNodeErrors(nodeErrs NodeErrors) {
	if len(nodeErrs) > 0 {
		sort.Slice(nodeErrs, func(i, j int) bool {
			if nodeErrs[i].Cluster != nodeErrs[j].Cluster {
				return nodeErrs[i].Cluster < nodeErrs[j].Cluster
			}
			return nodeErrs[i].Node < nodeErrs[j].Node
		})
	}
}

// LocalHost as a node's ssh.host runs that node's commands on this
// machine, with no SSH (the local connector).
const LocalHost = "local"

// nodeSpecs lists a cluster's nodes with nothing rendered yet: enough to
// connect.
func nodeSpecs(cl *config.Cluster) []NodeSpec {
	var ns []NodeSpec
	for _, n := range cl.Nodes {
		ns = append(ns, NodeSpec{Name: n.Name, IP: n.IP, SSH: n.SSH})
	}
	return ns
}

func connectAll(ctx context.Context, nodes []NodeSpec, opts Options) (map[string]host.Host, map[string]error) {
	hosts, errs, _, _ := connectAndGather(ctx, nodes, opts, nil, nil)
	return hosts, errs
}

// connectAndGather connects to every node in parallel and, when gather is
// not nil, runs it on each node as soon as that node is connected (and,
// when lock is not nil, locked: lock is told every node's connect error). It
// returns the connections, the connect errors, and gather's facts and
// errors (a nil *Facts with a nil error is dropped).
func connectAndGather(ctx context.Context, nodes []NodeSpec, opts Options,
	lock func(ctx context.Context, name string, h host.Host, connErr error) error,
	gather func(ctx context.Context, name string, h host.Host) (*Facts, error),
) (hosts map[string]host.Host, errs map[string]error, facts map[string]*Facts, gerrs map[string]error) {
	var mu sync.Mutex
	hosts, errs = map[string]host.Host{}, map[string]error{}
	facts, gerrs = map[string]*Facts{}, map[string]error{}
	var wg sync.WaitGroup
	var slowConnect, slowGather time.Duration // for HASTACK_TIMING
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h host.Host
			var err error
			t0 := time.Now()
			switch {
			case opts.Connect != nil:
				h, err = opts.Connect(ctx, n)
			case n.SSH.Host == LocalHost:
				h = host.Local(n.Name)
			default:
				h, err = sshconn.Dial(ctx, sshTarget(n), opts.SSH)
			}
			if lock != nil {
				connected := err == nil
				if err = lock(ctx, n.Name, h, err); connected && err != nil {
					h.Close()
				}
			}
			mu.Lock()
			slowConnect = max(slowConnect, time.Since(t0))
			if err != nil {
				errs[n.Name] = err
				mu.Unlock()
				return
			}
			hosts[n.Name] = h
			mu.Unlock()
			if gather == nil {
				return
			}
			t1 := time.Now()
			f, err := gather(ctx, n.Name, h)
			mu.Lock()
			defer mu.Unlock()
			slowGather = max(slowGather, time.Since(t1))
			switch {
			case err != nil:
				gerrs[n.Name] = err
			case f != nil:
				facts[n.Name] = f
			}
		}()
	}
	wg.Wait()
	if opts.Trace != nil {
		opts.Trace("slowest connect", slowConnect)
		if gather != nil {
			opts.Trace("slowest gather (incl. wait for render)", slowGather)
		}
	}
	return hosts, errs, facts, gerrs
}

// Apply carries out every plan, cluster after cluster.
func (s *Session) Apply(ctx context.Context, report func(Event)) []*Outcome {
	var out []*Outcome
	for i, p := range s.Plans {
		o := Apply(ctx, p, s.hosts[i], report)
		out = append(out, o)
		if o.Err() != nil {
			break
		}
	}
	return out
}

// Close releases the locks and closes every connection.
func (s *Session) Close() {
	for _, lk := range s.locks {
		lk.release()
	}
	for _, hs := range s.hosts {
		for _, h := range hs {
			h.Close()
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ConnectCluster opens one connection to every node of cl, all in
// parallel. On error the connections that were made are closed.
func ConnectCluster(ctx context.Context, cl *config.Cluster, opts Options) (map[string]host.Host, error) {
	hosts, errs := connectAll(ctx, nodeSpecs(cl), opts)
	if len(errs) == 0 {
		return hosts, nil
	}
	for _, h := range hosts {
		h.Close()
	}
	var ne NodeErrors
	for name, e := range errs {
		ne = append(ne, NodeError{cl.Name, name, e})
	}
	sort.Slice(ne, func(i, j int) bool { return ne[i].Node < ne[j].Node })
	return nil, ne
}

// ConnectReachable connects to every node of cl in parallel, as
// ConnectCluster, and returns the nodes it reached and why it did not
// reach the others.
func ConnectReachable(ctx context.Context, cl *config.Cluster, opts Options) (map[string]host.Host, map[string]error) {
	return connectAll(ctx, nodeSpecs(cl), opts)
}

// ResolveSecret reads a system's password, during a rotation the previous
// one too, and its named secrets. A system with none has the zero Secret.
func ResolveSecret(cl *config.Cluster) (secret.Secret, error) {
	var sec secret.Secret
	names := make([]string, 0, len(cl.Secrets))
	for n := range cl.Secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v, err := cl.Secrets[n].ResolveNamed(n)
		if err != nil {
			return secret.Secret{}, fmt.Errorf("%s %s: %w", kindOf(cl), cl.Name, err)
		}
		sec = sec.WithNamed(n, v)
	}
	if cl.Secret == (secret.Source{}) {
		return sec, nil
	}
	pw, err := cl.Secret.Resolve()
	if err != nil {
		return secret.Secret{}, fmt.Errorf("%s %s: %w", kindOf(cl), cl.Name, err)
	}
	for _, n := range names {
		v, _ := sec.Named(n)
		pw = pw.WithNamed(n, v)
	}
	sec = pw
	if cl.PreviousSecret != nil {
		prev, err := cl.PreviousSecret.Resolve()
		if err != nil {
			return sec, fmt.Errorf("%s %s: previousSecret: %w", kindOf(cl), cl.Name, err)
		}
		sec = sec.WithPrevious(prev)
	}
	return sec, nil
}
