package engine

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// checkMarkdown is a small validity check of what a forge renders: every
// code fence closed (by a fence of the same character, at least as long),
// every <details> and <summary> closed outside code, never closed before
// it opens, and every row of a table with as many unescaped cell bars as
// the table's first row.
func checkMarkdown(s string) error {
	open := regexp.MustCompile("^ {0,3}(`{3,}|~{3,})(.*)$")
	var fence string // the open fence's run of ` or ~
	depth := map[string]int{}
	tableBars := -1
	for i, l := range strings.Split(s, "\n") {
		if fence != "" {
			t := strings.TrimLeft(l, " ")
			if len(l)-len(t) <= 3 && strings.HasPrefix(t, fence) && strings.Trim(t, fence[:1]+" \t") == "" {
				fence = ""
			}
			continue
		}
		if m := open.FindStringSubmatch(l); m != nil {
			if m[1][0] == '`' && strings.Contains(m[2], "`") {
				return fmt.Errorf("line %d: a backtick in a fence's info string: %q", i+1, l)
			}
			fence = m[1]
			continue
		}
		for _, tag := range []string{"details", "summary"} {
			depth[tag] += strings.Count(l, "<"+tag+">") + strings.Count(l, "<"+tag+" ") - strings.Count(l, "</"+tag+">")
			if depth[tag] < 0 {
				return fmt.Errorf("line %d: </%s> without <%s>", i+1, tag, tag)
			}
		}
		if strings.HasPrefix(l, "|") {
			bars := strings.Count(l, "|") - strings.Count(l, `\|`)
			if tableBars < 0 {
				tableBars = bars
			} else if bars != tableBars {
				return fmt.Errorf("line %d: a table row with %d cell bars, the table has %d: %q", i+1, bars, tableBars, l)
			}
		} else {
			tableBars = -1
		}
	}
	if fence != "" {
		return fmt.Errorf("a code fence %s is not closed", fence)
	}
	for tag, d := range depth {
		if d != 0 {
			return fmt.Errorf("%d <%s> not closed", d, tag)
		}
	}
	return nil
}

// The checker can fail: each of these is broken Markdown.
func TestCheckMarkdownFindsBrokenMarkdown(t *testing.T) {
	for name, md := range map[string]string{
		"unclosed fence":      "<details><summary>x</summary>\n\n```diff\n+a\n</details>\n",
		"unclosed details":    "<details><summary>x</summary>\n\n```diff\n+a\n```\n",
		"fence closed inside": "<details><summary>x</summary>\n\n```diff\n```\n+a\n```\n</details>\n",
		"bar in a cell":       "| a | b |\n| --- | --- |\n| x|y | z |\n",
		"close before open":   "</details>\n<details>\n",
	} {
		if err := checkMarkdown(md); err == nil {
			t.Errorf("%s: the checker passed it:\n%s", name, md)
		}
	}
	if err := checkMarkdown("<details><summary>x</summary>\n\n````diff\n ```\n````\n\n</details>\n| a \\| b |\n|---|\n"); err != nil {
		t.Errorf("valid Markdown refused: %v", err)
	}
}

// bigPlan has changes on many nodes: 40 nodes with a 120-line diff each,
// one node whose diff alone is longer than a part, one line longer than a
// part, and lines that would close a short fence or a <details>.
func bigPlan(pw string) (*PlanFile, []string) {
	p := &Plan{Cluster: "big|one", Summary: ": leader <n1> | 3 answers", Notes: []string{"one note *with* marks"},
		Phases: []Phase{{Name: "files"}, {Name: "services"}}, secret: secret.New(pw)}
	var want []string // every line that belongs in a fence, in order
	for i := 0; i < 42; i++ {
		lines := 120
		switch i {
		case 7:
			lines = 3000 // ~100 kB: over one part
		}
		var diff strings.Builder
		diff.WriteString("--- /etc/app.conf\n+++ /etc/app.conf\n")
		for j := 0; j < lines; j++ {
			fmt.Fprintf(&diff, "+setting_%04d = value number %d\n", j, j)
		}
		if i == 3 {
			diff.WriteString(" ```\n-````\n+</details>\n+token " + pw + "\n")
			diff.WriteString("+" + strings.Repeat("x", 100_000) + "\n")
		}
		n := NodePlan{Name: fmt.Sprintf("n%d", i+1), Address: fmt.Sprintf("10.0.0.%d:22", i+1)}
		n.Changes = []*ResourceChange{
			{ID: "file:/etc/app.conf", Kind: "file", Phase: 0, Change: &modules.Change{Action: modules.Update, Summary: "update /etc/app.conf: content", Diff: diff.String()}},
			{ID: "service:app", Kind: "service", Phase: 1, Change: &modules.Change{Action: modules.Restart, Summary: "systemctl restart app", Reason: "file:/etc/app.conf changed", Commands: []string{"systemctl restart app"}}},
		}
		for _, l := range strings.Split(strings.TrimSuffix(diff.String(), "\n"), "\n") {
			want = append(want, strings.ReplaceAll(l, pw, "(sensitive)"))
		}
		p.Nodes = append(p.Nodes, n)
	}
	return &PlanFile{Clusters: []*Plan{p}}, want
}

// A plan over 65,000 characters comes out in parts, each at most the
// limit, each valid Markdown, numbered, with nothing lost: the fences'
// lines of all parts, in order, are the plan's diff lines, but for the
// one line longer than a part, which is cut with a note. The password a
// diff held is masked, the node cut in two is continued, and the values
// that could break the table or the fence are escaped.
func TestMarkdownSplitsLargePlans(t *testing.T) {
	const pw = "Pw-Markdown-31337"
	for _, limit := range []int{MarkdownLimit, 20_000, 4_000, MinMarkdownLimit} {
		pf, want := bigPlan(pw)
		parts, err := Markdown(pf, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) < 2 {
			t.Fatalf("limit %d: %d part(s)", limit, len(parts))
		}
		var fenced []string
		continued := 0
		for k, part := range parts {
			if len(part) > limit {
				t.Errorf("limit %d: part %d has %d bytes", limit, k+1, len(part))
			}
			if err := checkMarkdown(part); err != nil {
				t.Errorf("limit %d: part %d is not valid Markdown: %v", limit, k+1, err)
			}
			if head := fmt.Sprintf("<!-- hastack plan: part %d of %d -->\n", k+1, len(parts)); !strings.HasPrefix(part, head) {
				t.Errorf("limit %d: part %d does not start with %q", limit, k+1, head)
			}
			if k < len(parts)-1 && !strings.HasSuffix(part, fmt.Sprintf("_Continued in part %d of %d._\n", k+2, len(parts))) {
				t.Errorf("limit %d: part %d does not say where it continues", limit, k+1)
			}
			if strings.Contains(part, pw) {
				t.Errorf("limit %d: part %d shows the password", limit, k+1)
			}
			continued += strings.Count(part, "(continued)</summary>")
			fenced = append(fenced, fenceLines(part)...)
		}
		if continued == 0 {
			t.Errorf("limit %d: no node was continued in a later part", limit)
		}
		var diffs []string
		for _, l := range fenced {
			if !strings.HasPrefix(l, "$ ") {
				diffs = append(diffs, l)
			}
		}
		if len(diffs) != len(want) {
			t.Fatalf("limit %d: %d diff lines in the parts, want %d", limit, len(diffs), len(want))
		}
		for i := range want {
			if diffs[i] == want[i] {
				continue
			}
			if len(want[i]) > limit && strings.HasPrefix(want[i], strings.SplitN(diffs[i], " … (line cut: ", 2)[0]) &&
				strings.Contains(diffs[i], "more bytes; the text plan has all of it)") && len(diffs[i]) < limit {
				continue
			}
			t.Fatalf("limit %d: diff line %d is %.80q, want %.80q", limit, i, diffs[i], want[i])
		}
		first := parts[0]
		for _, s := range []string{`| big\|one | 42 (42 changing) | 0 | 42 | 0 | 0 | 42 | leader \<n1\> \| 3 answers |`,
			`> **Note** (big\|one): one note \*with\* marks`,
			"<details><summary>n1 (10.0.0.1:22): 1 to change, 1 service action</summary>"} {
			if !strings.Contains(first, s) {
				t.Errorf("limit %d: part 1 lacks %q", limit, s)
			}
		}
		if all, s := strings.Join(parts, ""), "`*` systemctl restart app (file:/etc/app.conf changed) · _phase 2: services_"; strings.Count(all, s) != 42 {
			t.Errorf("limit %d: %d service lines %q, want 42", limit, strings.Count(all, s), s)
		}
	}
}

// fenceLines are the lines inside the code fences of md.
func fenceLines(md string) []string {
	var out []string
	fence := ""
	for _, l := range strings.Split(md, "\n") {
		switch {
		case fence == "" && strings.HasPrefix(l, "```"):
			fence = strings.TrimRight(l, "diff")
		case fence != "" && l == fence:
			fence = ""
		case fence != "":
			out = append(out, l)
		}
	}
	return out
}

// A plan that fits is one part; no changes says so; a limit below the
// smallest is refused.
func TestMarkdownSmallPlans(t *testing.T) {
	pf := &PlanFile{Clusters: []*Plan{{Cluster: "c", Phases: []Phase{{Name: "p"}}, Nodes: []NodePlan{{Name: "n1", Address: "h:22"}}}}}
	parts, err := Markdown(pf, MarkdownLimit)
	if err != nil || len(parts) != 1 || !strings.Contains(parts[0], "**No changes.**") || strings.Contains(parts[0], "<details>") {
		t.Fatalf("no changes: %v %q", err, parts)
	}
	if strings.Contains(parts[0], "live state") {
		t.Errorf("a plan without a driver's summary has a live state column:\n%s", parts[0])
	}
	if _, err := Markdown(pf, MinMarkdownLimit-1); err == nil {
		t.Fatal("a limit below the smallest was taken")
	}
}
