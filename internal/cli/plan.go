package cli

import (
	"fmt"
	"path/filepath"

	"hastack.dev/hastack/engine"
)

func init() {
	register(&Command{
		Name:  "plan",
		Short: "connect to every node, read it, and show what apply would change",
		Example: `  hastack plan clusters/                          # the plan, as text
  hastack plan -out tfplan clusters/              # saved, for hastack apply tfplan
  hastack plan -format markdown clusters/         # for a pull request comment
  hastack plan -out tfplan -markdown-out md/ clusters/   # text on stdout, md/plan-1.md ... to post
  hastack plan -detailed-exitcode clusters/       # drift check: exit 2 when something would change`,
		Run: runPlan,
	})
}

// runPlan exits 0 when the plan was made (with -detailed-exitcode: 0 no
// changes, 2 changes), 1 on any error, 2 on usage errors.
func runPlan(env *Env, args []string) int {
	fs := flags(env, "plan", "[flags] [DIR]")
	var rf remoteFlags
	rf.register(fs)
	var of outputFlags
	of.register(fs, true)
	out := fs.String("out", "", "save the plan to `FILE`, for hastack apply FILE (or hastack show FILE)")
	detailed := fs.Bool("detailed-exitcode", false, "exit 0 when nothing changes, 2 when something does, 1 on error")
	var lf lockFlags
	lf.register(fs, "while a plan for -out is made (a plan that is only shown takes no lock)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	dir, ok := oneDir(fs)
	if !ok {
		fmt.Fprintln(env.Stderr, "hastack plan: give at most one folder")
		return ExitUsage
	}
	if !of.valid(env, "plan") {
		return ExitUsage
	}
	if of.format == "text" {
		useColor(env, of.noColor) // before prepare: see useColor
	}
	defer endColor(env) // flush, then what the colourer holds
	ctx, sig := onInterrupt(env, "plan", "stopping (a plan changes nothing on the nodes)", "nothing was changed on any node.")
	defer sig.stop()
	// A plan that is only shown reads and changes nothing: no lock. One
	// saved for apply is read under the lock, as apply's own plan is.
	var lk *engine.LockOptions
	if *out != "" {
		lk = lf.options(env, "plan", "plan -out")
	}
	s, _, code := prepare(ctx, env, "plan", dir, &rf, nil, of.format == "json" || *out != "", lk)
	if s == nil {
		return code
	}
	defer s.Close()
	abs, _ := filepath.Abs(dir)
	pf := engine.NewPlanFile(abs, s)
	for _, u := range s.Unreached {
		pf.Unreached = append(pf.Unreached, u.Cluster+"/"+u.Node)
	}
	if code := of.print(env, "plan", pf); code != ExitOK {
		return code
	}
	if *out != "" {
		if err := pf.Save(*out); err != nil {
			fmt.Fprintf(env.Stderr, "hastack plan: %v\n", err)
			return ExitFailure
		}
		if of.format == "text" {
			fmt.Fprintf(env.Stdout, "Saved the plan to %s: apply it with \"hastack apply %s\".\n", *out, *out)
		}
	}
	if *detailed && pf.Summary.Changes {
		return 2
	}
	return ExitOK
}
