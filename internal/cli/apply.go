package cli

import (
	"context"
	"fmt"
	"strings"

	"hastack.dev/hastack/engine"
)

func init() {
	register(&Command{
		Name:  "apply",
		Short: "make every node match the config (or carry out a saved plan)",
		Example: `  hastack apply clusters/                 # plan, ask for "yes", apply
  hastack apply -auto-approve clusters/   # no question (a pipeline)
  hastack plan -out tfplan clusters/ && hastack apply tfplan   # exactly the plan reviewed`,
		Run: runApply,
	})
}

func runApply(env *Env, args []string) int {
	fs := flags(env, "apply", "[flags] [DIR | PLANFILE]")
	var rf remoteFlags
	rf.register(fs)
	auto := fs.Bool("auto-approve", false, "do not ask for confirmation")
	noColor := fs.Bool("no-color", false, "no colour in the plan and apply lines (also: NO_COLOR set; none either when stdout is not a terminal)")
	var lf lockFlags
	lf.register(fs, "for the run")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	arg, ok := oneDir(fs)
	if !ok {
		fmt.Fprintln(env.Stderr, "hastack apply: give at most one folder or plan file")
		return ExitUsage
	}
	defer endColor(env) // flush, then what the colourer holds
	saved, dir, salt, code := applyTarget(env, arg)
	if code != ExitOK {
		return code
	}
	isPlan := saved != nil
	useColor(env, *noColor) // before prepare: see useColor
	terminal := env.Stderr  // the live progress line's, before redact wraps it

	// Ctrl-C: see interrupts. Until the changes start, nothing is changed.
	ctx, sig := onInterrupt(env, "apply", "stopping; nothing was changed on any node", "nothing was changed on any node.")
	defer sig.stop()

	s, _, code := prepare(ctx, env, "apply", dir, &rf, salt, isPlan, lf.options(env, "apply", "apply"))
	if s == nil {
		return code
	}
	defer s.Close()
	sig.atAbort(s.Close) // stops the commands still running on the nodes
	if isPlan {
		if why := saved.Stale(s.Plans); why != "" {
			fmt.Fprintf(env.Stderr, "hastack apply: the saved plan is stale: %s. Run hastack plan again.\n", why)
			return ExitFailure
		}
	}
	engine.WriteText(env.Stdout, s.Plans)
	var total engine.Counts
	for _, p := range s.Plans {
		total.Add(p)
	}
	if total.Empty() {
		return ExitOK
	}
	if !*auto && !isPlan && !confirmed(ctx, env) {
		fmt.Fprintln(env.Stderr, "hastack apply: cancelled; nothing was changed")
		return ExitFailure
	}
	fmt.Fprintln(env.Stdout)
	sig.changing("finishing the changes in progress, then stopping",
		"a change in progress may be half-done (files are replaced atomically, never half-written). Run hastack plan to see each node's state, then hastack apply to converge.")
	prog := newProgress(terminal, s.Plans) // nil: stderr is not a terminal
	outcomes := s.Apply(engine.WithStart(ctx, prog.start), func(ev engine.Event) {
		prog.event(ev, func() { printEvent(env, ev) })
	})
	prog.finish()
	done, failed := reportOutcomes(env, s.Plans, outcomes)
	if failed {
		return ExitFailure
	}
	fmt.Fprintf(env.Stdout, "\nApply complete: %d changes on %d nodes.\n", done, total.Nodes)
	return ExitOK
}

// applyTarget reads arg as a saved plan or a config folder: the plan (nil
// for a folder), the folder to load and the plan's fingerprint salt.
func applyTarget(env *Env, arg string) (saved *engine.PlanFile, dir string, salt []byte, code int) {
	saved, isPlan, err := engine.ReadPlanFile(arg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "hastack apply: %v\n", err)
		return nil, "", nil, ExitUsage
	}
	if !isPlan {
		return nil, arg, nil, ExitOK
	}
	if salt, err = saved.Salt(); err != nil {
		fmt.Fprintf(env.Stderr, "hastack apply: %s: %v\n", arg, err)
		return nil, "", nil, ExitUsage
	}
	return saved, saved.ConfigDir, salt, ExitOK
}

// confirmed asks the user to type yes.
func confirmed(ctx context.Context, env *Env) bool {
	fmt.Fprint(env.Stdout, "\nDo you want to perform these actions? Only 'yes' will be accepted: ")
	endColor(env) // the prompt, which has no newline
	line, _ := readLine(ctx, env.Stdin)
	return strings.TrimSpace(line) == "yes"
}

// printEvent is one line per change as apply carries it out.
func printEvent(env *Env, ev engine.Event) {
	status := "done"
	if ev.Err != nil {
		status = "FAILED: " + ev.Err.Error()
	}
	fmt.Fprintf(env.Stdout, "%s: %s %s: %s (%.2fs)\n", ev.Node, engine.Symbol(ev.Change.Action), ev.Change.ID, status, ev.Duration.Seconds())
}

// reportOutcomes says, for each plan that failed, what failed and what was
// not done; done counts the changes made. failed is also true when a
// failure left later plans out.
func reportOutcomes(env *Env, plans []*engine.Plan, outcomes []*engine.Outcome) (done int, failed bool) {
	for i, o := range outcomes {
		for _, ids := range o.Done {
			done += len(ids)
		}
		if o.Err() == nil {
			continue
		}
		failed = true
		p := plans[i]
		fmt.Fprintf(env.Stderr, "\nhastack apply: cluster %s: %v\n", p.Cluster, o.Err())
		for _, n := range p.Nodes {
			if err := o.Failed[n.Name]; err != nil {
				fmt.Fprintf(env.Stderr, "  %s: failed: %v\n", n.Name, err)
			}
			if len(o.Skipped[n.Name]) > 0 {
				fmt.Fprintf(env.Stderr, "  %s: not done: %s\n", n.Name, strings.Join(o.Skipped[n.Name], ", "))
			}
		}
		fmt.Fprintln(env.Stderr, "Run hastack apply again to converge: every step is idempotent.")
	}
	return done, failed || len(outcomes) < len(plans)
}
