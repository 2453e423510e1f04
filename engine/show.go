package engine

import (
	"fmt"
	"io"
	"strings"

	"hastack.dev/hastack/modules"
)

// Symbol is the plan's mark for an action.
func Symbol(a modules.Action) string {
	switch a {
	case modules.Create:
		return "+"
	case modules.Update:
		return "~"
	case modules.Delete, modules.Stop:
		return "-"
	case modules.Run:
		return ">"
	default: // start, restart, enable
		return "*"
	}
}

// WriteText prints plans the way a person reviews them: per cluster, per
// node, per resource, with the commands that will run and file diffs.
func WriteText(w io.Writer, plans []*Plan) {
	var total Counts
	for _, p := range plans {
		total.Add(p)
		fmt.Fprintf(w, "Cluster %s%s", p.Cluster, p.Summary)
		for _, note := range p.Notes {
			fmt.Fprintf(w, "\n  note: %s", note)
		}
		fmt.Fprintln(w)
		for _, n := range p.Nodes {
			if len(n.Changes) == 0 {
				continue
			}
			fmt.Fprintf(w, "\nnode %s (%s)\n", n.Name, n.Address)
			for _, c := range n.Changes {
				fmt.Fprintf(w, "  %s %s", Symbol(c.Action), c.Summary)
				if c.Reason != "" {
					fmt.Fprintf(w, " (%s)", c.Reason)
				}
				if c.Unpredictable {
					fmt.Fprint(w, " [no guard: always runs, effect not known before apply]")
				}
				fmt.Fprintf(w, "   [phase %d: %s]\n", c.Phase+1, phaseName(p, c.Phase))
				for _, cmd := range shownCommands(c) {
					fmt.Fprintf(w, "      $ %s\n", cmd)
				}
				if c.Diff != "" {
					for _, l := range strings.Split(strings.TrimSuffix(c.Diff, "\n"), "\n") {
						fmt.Fprintf(w, "      %s\n", l)
					}
				}
			}
		}
	}
	fmt.Fprintln(w)
	if total.Empty() {
		fmt.Fprintln(w, "No changes. The cluster matches the configuration.")
		return
	}
	fmt.Fprintln(w, Summary(total))
}

// phaseName is the name of a plan's phase i ("?" in a plan that has no
// such phase: ReadPlanFile refuses those, this is for safety).
func phaseName(p *Plan, i int) string {
	if i < 0 || i >= len(p.Phases) {
		return "?"
	}
	return p.Phases[i].Name
}

// Summary is the plan's last line.
func Summary(c Counts) string {
	s := fmt.Sprintf("Plan: %d nodes, %d to create, %d to change, %d to delete, %d commands to run", c.Nodes, c.Create, c.Update, c.Delete, c.Run)
	if c.Unpredictable > 0 {
		s += fmt.Sprintf(" (%d with unknown effect)", c.Unpredictable)
	}
	return s + fmt.Sprintf(", %d service actions.", c.Services)
}
