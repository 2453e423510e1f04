package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/internal/host"
)

func init() {
	register(&Command{
		Name:  "check",
		Short: "verify running systems over SSH with their stack's checks; drills (-drill NAME) prove failover, replication, kills",
		Example: `  hastack check clusters/                    # read-only checks of every cluster
  hastack check -wait 30s clusters/          # right after an apply: retry until they pass
  hastack check -failover clusters/          # the failover drill (changes the system, takes the lock)
  hastack check -drill kill,server stacks/   # a stack's named drills, in that order`,
		Run: runCheck,
	})
}

// runCheck exits 0 when every check of every cluster passed, 1 otherwise,
// 2 on usage errors. See docs/check.md.
func runCheck(env *Env, args []string) int {
	fs := flags(env, "check", "[flags] [DIR]")
	var rf remoteFlags
	rf.register(fs)
	failover := fs.Bool("failover", false, "run the failover drill (003 step 12): pause the primary with DEBUG SLEEP, see a replica promoted, see the old primary rejoin; needs redis: debugCommand: \"yes\"")
	replication := fs.Bool("replication", false, "run the replication drill (003 step 13): add a test Node API user on one node, list it on another, delete it on a third")
	var named drillList
	fs.Var(&named, "drill", "run the stack's drill NAME (repeatable, or NAME,NAME); the stack's docs list its drills (hsts: replication, failover, bearer; shares: failover; massstore: kill, server, vip)")
	wait := fs.Duration("wait", 0, "retry the checks until they pass or this long has passed (e.g. 30s, right after an apply)")
	var lf lockFlags
	lf.register(fs, "during a drill (a check without a drill changes nothing but the docroot probe it removes, and takes no lock)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	dir, ok := oneDir(fs)
	if !ok {
		fmt.Fprintln(env.Stderr, "hastack check: give at most one folder")
		return ExitUsage
	}
	if *wait < 0 {
		fmt.Fprintln(env.Stderr, "hastack check: -wait must not be negative")
		return ExitUsage
	}
	defer flush(env)
	cfg, code := loadValid(env, "check", dir)
	if cfg == nil {
		return code
	}
	opts, err := rf.options()
	if err != nil {
		fmt.Fprintf(env.Stderr, "hastack check: %v\n", err)
		return ExitUsage
	}
	var drills []string
	if *replication {
		drills = append(drills, "replication")
	}
	if *failover {
		drills = append(drills, "failover")
	}
	for _, d := range named {
		if !slices.Contains(drills, d) {
			drills = append(drills, d)
		}
	}
	if len(drills) > 0 {
		// A drill changes the system (a paused primary, a test user, a
		// killed process): it must not run during another run's apply,
		// nor one start during it.
		opts.Lock = lf.options(env, "check", drillCommand(drills))
	}
	ctx, sig := onInterrupt(env, "check", "stopping after the step in progress",
		"a drill in progress may have left its test user or a paused Redis behind. Run hastack check to see the cluster's state.")
	defer sig.stop()
	code = ExitOK
	for _, cl := range cfg.Clusters {
		if len(opts.Clusters) > 0 && !slices.Contains(opts.Clusters, cl.Name) {
			continue
		}
		sys, err := engine.Open(cl)
		if err != nil {
			fmt.Fprintf(env.Stderr, "hastack check: %v\n", err)
			return ExitFailure
		}
		checker, ok := sys.(engine.Checker)
		if !ok {
			fmt.Fprintf(env.Stderr, "hastack check: %s %s: its stack has no check\n", cl.Field, cl.Name)
			code = ExitFailure
			continue
		}
		// A stack with no secret (massstore) checks with the zero Secret.
		sec, err := engine.ResolveSecret(cl)
		if err != nil {
			fmt.Fprintf(env.Stderr, "hastack check: cluster %s: %v\n", cl.Name, err)
			return ExitFailure
		}
		redact(env, sec)
		// Every wait inside is bounded too; this is the last resort: 5
		// minutes for the checks and 5 for each drill asked for.
		cctx, cancel := context.WithTimeout(ctx, checkLimit(len(drills), *wait))
		var unreachable map[string]error
		var hosts map[string]host.Host
		unlock := func() {}
		if _, partial := checker.(engine.PartialChecker); partial && opts.Lock == nil {
			// A node down is what the system is built to survive: report
			// on the others, the unreachable named as failures. (A drill
			// takes the lock and needs every node.)
			hosts, unreachable = engine.ConnectReachable(cctx, cl, opts)
			for _, n := range slices.Sorted(maps.Keys(unreachable)) {
				fmt.Fprintf(env.Stderr, "hastack check: cluster %s: %v\n", cl.Name, unreachable[n])
			}
			if len(hosts) == 0 {
				err = fmt.Errorf("cluster %s: no node reached", cl.Name)
			}
		} else {
			hosts, unlock, err = engine.ConnectClusterLocked(cctx, cl, opts)
		}
		if err != nil {
			cancel()
			fmt.Fprintf(env.Stderr, "hastack check: %v\n", err)
			lockAdvice(env, "check", err)
			code = ExitFailure
			continue
		}
		if !checker.Check(cctx, engine.CheckRequest{Hosts: hosts, Secret: sec, Out: env.Stdout, Wait: *wait, Drills: drills, Unreachable: unreachable}) {
			code = ExitFailure
		}
		unlock()
		for _, h := range hosts {
			h.Close()
		}
		cancel()
	}
	return code
}

// checkLimit bounds one cluster's check: the checks' retries (wait) and 5
// minutes, and 5 more per drill (several drills in one call ran past a
// fixed 5 on MassStore).
func checkLimit(drills int, wait time.Duration) time.Duration {
	return time.Duration(1+drills)*5*time.Minute + wait
}

// drillCommand is the command a drill's lock names as its holder.
func drillCommand(drills []string) string {
	return "check -drill " + strings.Join(drills, ",")
}

// drillList is the -drill flag: names, repeated or comma-separated.
type drillList []string

func (d *drillList) String() string { return strings.Join(*d, ",") }

func (d *drillList) Set(v string) error {
	for _, n := range strings.Split(v, ",") {
		n = strings.TrimSpace(n)
		if n == "" || strings.IndexFunc(n, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') }) >= 0 {
			return fmt.Errorf("drill name %q: use lower-case letters, digits and '-'", n)
		}
		*d = append(*d, n)
	}
	return nil
}
