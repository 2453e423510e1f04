package engine

import (
	"fmt"
	"sort"
	"strings"

	"hastack.dev/hastack/internal/termsafe"
	"hastack.dev/hastack/modules"
)

// MarkdownLimit is the default size of one Markdown part: under the
// 65,536 characters GitHub takes in a comment, with room to spare for a
// workflow's own line or two. Sizes are counted in bytes, which are never
// fewer than characters however a forge counts them.
const MarkdownLimit = 65000

// MinMarkdownLimit is the smallest part size Markdown accepts: a part must
// hold its heading, a node's opening and closing and some of a line.
const MinMarkdownLimit = 1000

// partMarker starts every part (docs/plan.md): a workflow splits the
// stdout form on it, and finds its earlier comments by it.
const partMarker = "<!-- hastack plan: part %d of %d -->"

// Markdown renders a plan for a pull request comment: a summary table,
// then one collapsible block per node with changes, the diffs in fenced
// code. It comes in parts of at most limit bytes each, cut only between
// lines: a node cut in two is closed and opened again ("(continued)"), a
// line longer than a part is cut short with a note. Every value is
// escaped for where it goes (termsafe, then Markdown or HTML), and the
// plans' passwords, if any slipped into a value, are masked as the text
// plan's stream masks them, before anything is measured.
func Markdown(pf *PlanFile, limit int) ([]string, error) {
	if limit < MinMarkdownLimit {
		return nil, fmt.Errorf("a Markdown part must be allowed at least %d characters", MinMarkdownLimit)
	}
	clean := cleaner(pf.Clusters)
	blocks := []mdBlock{summaryBlock(pf, clean)}
	many := len(pf.Clusters) > 1
	for _, p := range pf.Clusters {
		for _, n := range p.Nodes {
			if len(n.Changes) > 0 {
				blocks = append(blocks, nodeBlock(p, n, many, clean))
			}
		}
	}
	return pack(blocks, limit)
}

// cleaner makes a value printable: control characters escaped as the
// terminal's stream escapes them, and every password of the plans masked.
// (A plan holds no password by design; this is the last line of defence
// that the output streams also are, applied before sizes are counted.)
func cleaner(plans []*Plan) func(string) string {
	var secrets []string
	for _, p := range plans {
		secrets = append(secrets, p.secret.Values()...)
	}
	sort.SliceStable(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	return func(s string) string {
		for _, v := range secrets {
			s = strings.ReplaceAll(s, v, "(sensitive)")
		}
		return termsafe.String(s)
	}
}

// summaryBlock is the plan's heading: the totals, one table row per
// cluster, the drivers' notes and the nodes left out.
func summaryBlock(pf *PlanFile, clean func(string) string) mdBlock {
	var total Counts
	for _, p := range pf.Clusters {
		total.Add(p)
	}
	var b mdBlock
	add := func(s string) { b.lines = append(b.lines, mdLine{text: s}) }
	if total.Empty() {
		add("**No changes.** The cluster matches the configuration.")
	} else {
		add("**" + mdText(Summary(total)) + "**")
	}
	add("")
	// The live state column is the drivers' (which node leads, say); a
	// plan of plain stacks has none.
	live := false
	for _, p := range pf.Clusters {
		live = live || liveSummary(p.Summary) != ""
	}
	if live {
		add("| system | nodes | to create | to change | to delete | commands to run | service actions | live state |")
		add("| :-- | --: | --: | --: | --: | --: | --: | :-- |")
	} else {
		add("| system | nodes | to create | to change | to delete | commands to run | service actions |")
		add("| :-- | --: | --: | --: | --: | --: | --: |")
	}
	for _, p := range pf.Clusters {
		var c Counts
		c.Add(p)
		changing := 0
		for _, n := range p.Nodes {
			if len(n.Changes) > 0 {
				changing++
			}
		}
		run := fmt.Sprint(c.Run)
		if c.Unpredictable > 0 {
			run += fmt.Sprintf(" (%d with unknown effect)", c.Unpredictable)
		}
		row := fmt.Sprintf("| %s | %d (%d changing) | %d | %d | %d | %s | %d |", mdText(clean(p.Cluster)), c.Nodes, changing,
			c.Create, c.Update, c.Delete, run, c.Services)
		if live {
			row += " " + mdText(clean(liveSummary(p.Summary))) + " |"
		}
		add(row)
	}
	for _, p := range pf.Clusters {
		for _, note := range p.Notes {
			add("")
			add(fmt.Sprintf("> **Note** (%s): %s", mdText(clean(p.Cluster)), mdText(clean(note))))
		}
	}
	if len(pf.Unreached) > 0 {
		add("")
		add("**Left out** (not reached, -allow-partial): " + mdText(clean(strings.Join(pf.Unreached, ", "))))
	}
	add("")
	return b
}

// liveSummary is a driver's header without the punctuation that joins it
// to "Cluster NAME" in the text plan.
func liveSummary(s string) string {
	return strings.TrimLeft(strings.TrimSpace(s), ": ")
}

// nodeBlock is one node's changes in a <details> block: per change its
// line as the text plan has it, then what the text plan indents under it
// (the commands, the diff) in a diff fence.
func nodeBlock(p *Plan, n NodePlan, withCluster bool, clean func(string) string) mdBlock {
	name := clean(n.Name) + " (" + clean(n.Address) + ")"
	if withCluster {
		name = clean(p.Cluster) + " / " + name
	}
	var c Counts
	c.Add(&Plan{Nodes: []NodePlan{n}})
	b := mdBlock{
		open:   "<details><summary>" + htmlText(name+": "+nodeCounts(c)) + "</summary>\n\n",
		reopen: "<details open><summary>" + htmlText(name+" (continued)") + "</summary>\n\n",
		close:  "</details>\n\n",
	}
	for _, ch := range n.Changes {
		head := "`" + Symbol(ch.Action) + "` " + mdText(clean(ch.Summary))
		if ch.Reason != "" {
			head += " (" + mdText(clean(ch.Reason)) + ")"
		}
		if ch.Unpredictable {
			head += " **\\[no guard: always runs, effect not known before apply\\]**"
		}
		head += " · _phase " + fmt.Sprint(ch.Phase+1) + ": " + mdText(clean(phaseName(p, ch.Phase))) + "_"
		b.lines = append(b.lines, mdLine{text: head}, mdLine{text: ""})
		var code []string
		for _, cmd := range shownCommands(ch) {
			code = append(code, "$ "+clean(cmd))
		}
		if ch.Diff != "" {
			for _, l := range strings.Split(strings.TrimSuffix(ch.Diff, "\n"), "\n") {
				code = append(code, clean(l))
			}
		}
		if len(code) > 0 {
			fence := fenceFor(code) + "diff"
			for _, l := range code {
				b.lines = append(b.lines, mdLine{text: l, fence: fence})
			}
			b.lines = append(b.lines, mdLine{text: ""})
		}
	}
	return b
}

// nodeCounts says what changes on one node: "1 to create, 2 service actions".
func nodeCounts(c Counts) string {
	var parts []string
	plural := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	plural(c.Create, "to create", "to create")
	plural(c.Update, "to change", "to change")
	plural(c.Delete, "to delete", "to delete")
	plural(c.Run, "command to run", "commands to run")
	plural(c.Services, "service action", "service actions")
	return strings.Join(parts, ", ")
}

// shownCommands are the command lines the text plan prints under a
// change: none that only repeats its summary.
func shownCommands(c *ResourceChange) []string {
	if c.Action == modules.Run && len(c.Commands) == 1 {
		if "run "+c.Commands[0] == c.Summary {
			return nil
		}
		return c.Commands
	}
	var out []string
	for _, cmd := range c.Commands {
		if cmd != c.Summary {
			out = append(out, cmd)
		}
	}
	return out
}

// fenceFor is a backtick fence longer than any run of backticks in the
// lines, so that none of them (a diff line "```") can close it.
func fenceFor(lines []string) string {
	longest := 0
	for _, l := range lines {
		run := 0
		for i := 0; i < len(l); i++ {
			if l[i] == '`' {
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// mdText escapes text for a Markdown paragraph or table cell: with a
// backslash, every character that could start emphasis, code, a link, an
// HTML tag or entity, a table cell, math, a mention or an issue reference.
func mdText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>&~|$@#", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// htmlText escapes text inside an HTML tag's content (<summary>), where
// Markdown is not read and backslashes would show.
func htmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "@", "&#64;").Replace(s)
}
