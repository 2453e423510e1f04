package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/lock"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/internal/sshconn"
	"hastack.dev/hastack/internal/termsafe"
)

// remoteFlags are the flags of every command that reaches nodes.
type remoteFlags struct {
	knownHosts   listFlag
	identities   listFlag
	sshConfig    string
	acceptNew    bool
	insecureKeys bool
	clusters     listFlag
	partial      bool
}

type listFlag []string

// lockFlags are the flags of the commands that lock the cluster (apply,
// plan -out), named as Terraform's.
type lockFlags struct {
	enabled bool
	timeout time.Duration
}

func (l *lockFlags) register(fs *flag.FlagSet, what string) {
	fs.BoolVar(&l.enabled, "lock", true, "lock the cluster "+what+" (this machine and every node); -lock=false is DANGEROUS, for break-glass use only: another run may then change the cluster at the same time")
	fs.DurationVar(&l.timeout, "lock-timeout", 0, "how long to wait for a lock another run holds, e.g. 5m (default 0: refuse at once)")
}

// options are the engine's lock options for command ("apply", "plan -out"),
// or nil with -lock=false, after a warning.
func (l *lockFlags) options(env *Env, name, command string) *engine.LockOptions {
	if !l.enabled {
		fmt.Fprintf(env.Stderr, "hastack %s: warning: -lock=false: the cluster is not locked; another run may change it at the same time\n", name)
		return nil
	}
	return &engine.LockOptions{
		Holder:  lock.NewHolder("hastack " + command),
		Timeout: l.timeout,
		Waiting: func(he *lock.HeldError) {
			fmt.Fprintf(env.Stderr, "hastack %s: %v; waiting for it (-lock-timeout %s)\n", name, he, l.timeout)
		},
	}
}

// lockAdvice follows a refusal: what the user may do about it.
func lockAdvice(env *Env, name string, err error) {
	var he *lock.HeldError
	if errors.As(err, &he) {
		fmt.Fprintf(env.Stderr, "hastack %s: another run holds the cluster's lock: wait for it to end, or pass -lock-timeout to wait for it.\n"+
			"A lock is released when its run ends, is killed or loses its SSH connection; -lock=false skips it (dangerous).\n", name)
	}
}

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func (r *remoteFlags) register(fs *flag.FlagSet) {
	fs.Var(&r.knownHosts, "known-hosts", "known_hosts file (repeatable; default $HASTACK_KNOWN_HOSTS or ~/.ssh/known_hosts)")
	fs.StringVar(&r.sshConfig, "F", "", "OpenSSH client config file for hosts, users, ports, keys and ProxyJump (default $HASTACK_SSH_CONFIG or ~/.ssh/config; none: read none); what the hastack config and the flags say wins")
	fs.Var(&r.identities, "i", "SSH private key file (repeatable; default $HASTACK_IDENTITY, ~/.ssh/id_*, and ssh-agent)")
	fs.BoolVar(&r.acceptNew, "accept-new-host-keys", false, "trust and record host keys of nodes not yet in known_hosts (a changed key is still refused)")
	fs.BoolVar(&r.insecureKeys, "insecure-ignore-host-keys", false, "do not verify host keys at all (never in production)")
	fs.Var(&r.clusters, "cluster", "only this cluster (repeatable)")
	fs.BoolVar(&r.partial, "allow-partial", false, "for recovery: when some nodes cannot be reached, plan and apply for the others (rollouts still wait for a majority of all Sentinels)")
}

// options builds the engine's options. A registered setup may route SSH
// (sshconn.RegisterSetup: $HASTACK_LAB names a local lab's folder), and
// $HASTACK_CONNECTOR a registered connector.
func (r *remoteFlags) options() (engine.Options, error) {
	c := sshconn.Config{
		KnownHosts:            r.knownHosts,
		IdentityFiles:         r.identities,
		AcceptNew:             r.acceptNew,
		InsecureIgnoreHostKey: r.insecureKeys,
		UseAgent:              true,
	}
	if len(c.KnownHosts) == 0 {
		if v := os.Getenv("HASTACK_KNOWN_HOSTS"); v != "" {
			c.KnownHosts = filepath.SplitList(v)
		}
	}
	if len(c.IdentityFiles) == 0 {
		if v := os.Getenv("HASTACK_IDENTITY"); v != "" {
			c.IdentityFiles = filepath.SplitList(v)
		}
	}
	cc, err := r.clientConfig()
	if err != nil {
		return engine.Options{}, err
	}
	c.ClientConfig = cc
	// HASTACK_LAB and the like: registered by the packages that own them.
	if err := sshconn.FromEnv(&c); err != nil {
		return engine.Options{}, err
	}
	opts := engine.Options{SSH: c, Clusters: r.clusters, AllowPartial: r.partial}
	// HASTACK_CONNECTOR=name[:arg] reaches the nodes through a registered
	// connector instead of SSH (tests: canned facts).
	if spec := os.Getenv("HASTACK_CONNECTOR"); spec != "" {
		connect, err := engine.ConnectorFor(spec)
		if err != nil {
			return engine.Options{}, fmt.Errorf("HASTACK_CONNECTOR: %w", err)
		}
		opts.Connect = connect
	}
	return opts, nil
}

// clientConfig reads the OpenSSH client config: -F, else
// $HASTACK_SSH_CONFIG, else ~/.ssh/config when there is one; "none" reads
// none. See docs/ssh.md.
func (r *remoteFlags) clientConfig() (*sshconn.ClientConfig, error) {
	path := r.sshConfig
	if path == "" {
		path = os.Getenv("HASTACK_SSH_CONFIG")
	}
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, nil
		}
		path = filepath.Join(home, ".ssh", "config")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	if path == sshconn.NoClientConfig {
		return nil, nil
	}
	return sshconn.LoadClientConfig(path)
}

// prepare loads and validates dir, makes every stream redact the cluster
// passwords, and plans. It prints its own errors and returns the exit code
// to use when the session is nil.
// salt is a saved plan's fingerprint salt (nil for a new plan);
// fingerprints says whether the plan will be saved, printed as JSON or
// checked against a saved one; lk, when not nil, locks the cluster before
// anything is read (lockFlags.options).
func prepare(ctx context.Context, env *Env, name, dir string, rf *remoteFlags, salt []byte, fingerprints bool, lk *engine.LockOptions) (*engine.Session, *config.Config, int) {
	cfg, code := loadValid(env, name, dir)
	if cfg == nil {
		return nil, nil, code
	}
	for _, cl := range cfg.Clusters {
		sec, err := engine.ResolveSecret(cl)
		if err != nil {
			fmt.Fprintf(env.Stderr, "hastack %s: %v\n", name, err)
			return nil, nil, ExitFailure
		}
		redact(env, sec)
	}
	opts, err := rf.options()
	if err != nil {
		fmt.Fprintf(env.Stderr, "hastack %s: %v\n", name, err)
		return nil, nil, ExitUsage
	}
	opts.PlanSalt = salt
	opts.NoFingerprints = !fingerprints
	// apply opens SFTP while connecting: a node that cannot take file
	// writes is refused before anything changes.
	opts.SSH.OpenSFTP = name == "apply"
	opts.Lock = lk
	if opts.RenderCache, err = engine.DefaultRenderCache(); err != nil {
		fmt.Fprintf(env.Stderr, "hastack %s: warning: %v\n", name, err)
	}
	if os.Getenv("HASTACK_TIMING") != "" {
		opts.Trace = func(step string, d time.Duration) {
			fmt.Fprintf(env.Stderr, "timing: %-12s %6.1f ms\n", step, float64(d.Microseconds())/1000)
		}
	}
	s, err := engine.Prepare(ctx, cfg, opts)
	if err == nil && len(s.Unreached) > 0 {
		fmt.Fprintf(env.Stderr, "hastack %s: -allow-partial: these nodes are left out and will not be changed:\n%v\n", name, s.Unreached)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "hastack %s: %v\n", name, err)
		lockAdvice(env, name, err)
		fmt.Fprintf(env.Stderr, "hastack %s: nothing was changed on any node\n", name)
		return nil, nil, ExitFailure
	}
	return s, cfg, ExitOK
}

// redact makes env's streams hide sec from here on. The streams also
// escape control characters from here on: what follows may hold a node's
// text (a file in a diff, a command's stderr, a holder line), which must
// not drive the terminal. The escape comes after the redaction, so a
// password is hidden before any of its characters could be escaped.
func redact(env *Env, sec secret.Secret) {
	for _, w := range []*io.Writer{&env.Stdout, &env.Stderr} {
		r, ok := (*w).(*secret.Redactor)
		if !ok {
			r = secret.NewRedactor(termsafe.NewWriter(*w))
			*w = r
		}
		r.Add(sec)
	}
}

// flush writes out what redactors still hold.
func flush(env *Env) {
	if r, ok := env.Stdout.(*secret.Redactor); ok {
		r.Flush()
	}
	if r, ok := env.Stderr.(*secret.Redactor); ok {
		r.Flush()
	}
}

func oneDir(fs *flag.FlagSet) (string, bool) {
	switch fs.NArg() {
	case 0:
		return ".", true
	case 1:
		return fs.Arg(0), true
	}
	return "", false
}

// loadValid loads dir and prints problems; it returns nil with an exit code
// when the config cannot be used.
func loadValid(env *Env, name, dir string) (*config.Config, int) {
	cfg, problems, err := config.Load(dir)
	if err != nil {
		fmt.Fprintf(env.Stderr, "hastack %s: %v\n", name, err)
		var ue *config.UsageError
		if errors.As(err, &ue) {
			return nil, ExitUsage
		}
		return nil, ExitFailure
	}
	if len(problems) == 0 {
		problems = cfg.SecretProblems()
	}
	if len(problems) > 0 {
		printProblems(env, "text", problems)
		fmt.Fprintf(env.Stderr, "hastack %s: the config is not valid; no node was contacted\n", name)
		return nil, ExitFailure
	}
	return cfg, ExitOK
}
