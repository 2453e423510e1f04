package cli

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// Every command's -h exits 0 and prints its usage, examples and flags,
// and every flag's argument is a single word: a usage text with other
// words in back quotes makes the flag package print them as the
// argument's name ("-out hastack apply FILE", issue 10).
func TestHelpOfEveryCommand(t *testing.T) {
	flagLine := regexp.MustCompile(`^  -[A-Za-z][-A-Za-z]*( [A-Za-z]+)?$`)
	for name := range commands {
		var stderr bytes.Buffer
		env := &Env{Stdout: &bytes.Buffer{}, Stderr: &stderr}
		if code := Run(env, []string{name, "-h"}); code != ExitOK {
			t.Errorf("%s -h: exit %d", name, code)
		}
		out := stderr.String()
		if !strings.HasPrefix(out, "usage: hastack "+name+" ") || !strings.Contains(out, "\nexamples:\n") || !strings.Contains(out, "\n  hastack "+name+" ") {
			t.Errorf("%s -h: no usage line or no example:\n%s", name, out)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "  -") && !flagLine.MatchString(l) {
				t.Errorf("%s -h: flag line %q: its argument is not one word (back quotes in its usage?)", name, l)
			}
		}
	}
	var stderr bytes.Buffer
	Run(&Env{Stdout: &bytes.Buffer{}, Stderr: &stderr}, []string{"plan", "-h"})
	if !strings.Contains(stderr.String(), "\n  -out FILE\n") {
		t.Errorf("plan -h does not name -out's argument FILE:\n%s", stderr.String())
	}
	stderr.Reset()
	if code := Run(&Env{Stdout: &bytes.Buffer{}, Stderr: &stderr}, []string{"help", "show"}); code != ExitOK || !strings.HasPrefix(stderr.String(), "usage: hastack show ") {
		t.Errorf("hastack help show: exit %d\n%s", code, stderr.String())
	}
}

// colourPlan is a plan with one change of each mark and a diff.
func colourPlan() *engine.Plan {
	ch := func(a modules.Action, summary, diff string) *engine.ResourceChange {
		return &engine.ResourceChange{ID: "x:" + summary, Kind: "x", Change: &modules.Change{Action: a, Summary: summary, Diff: diff}}
	}
	return &engine.Plan{Cluster: "c", Phases: []engine.Phase{{Name: "p"}}, Nodes: []engine.NodePlan{{Name: "n1", Address: "h:22", Changes: []*engine.ResourceChange{
		ch(modules.Create, "create /a", ""),
		ch(modules.Update, "update /b", "--- /b\n+++ /b\n@@ -1 +1 @@\n-old \x1b[31mred\n+new\n"),
		ch(modules.Stop, "systemctl stop x", ""),
	}}}}
}

// On a terminal (or FORCE_COLOR) the marks and diff lines are coloured as
// Terraform colours them; the colourer sits below the escaping of node
// text, so an ESC from a node's file still shows escaped.
func TestColourOfTheTextPlan(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	t.Setenv("FORCE_COLOR", "1")
	var stdout bytes.Buffer
	env := &Env{Stdout: &stdout, Stderr: &bytes.Buffer{}}
	useColor(env, false)
	redact(env, secret.New("Pw-Colour-12345"))
	engine.WriteText(env.Stdout, []*engine.Plan{colourPlan()})
	flush(env)
	out := stdout.String()
	for _, want := range []string{
		"  " + sgrGreen + "+" + sgrReset + " create /a",
		"  " + sgrYellow + "~" + sgrReset + " update /b",
		"  " + sgrRed + "-" + sgrReset + " systemctl stop x",
		sgrRed + `      -old \x1b[31mred` + sgrReset,
		sgrGreen + "      +new" + sgrReset,
		sgrBold + "Plan: 1 nodes",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the coloured plan:\n%q", want, out)
		}
	}

	// -no-color, and NO_COLOR whatever FORCE_COLOR says: no escape at all.
	for _, c := range []struct {
		noColor bool
		env     string
	}{{true, ""}, {false, "1"}, {false, "yes"}} {
		t.Setenv("NO_COLOR", c.env)
		stdout.Reset()
		env := &Env{Stdout: &stdout, Stderr: &bytes.Buffer{}}
		useColor(env, c.noColor)
		redact(env, secret.New("Pw-Colour-12345"))
		engine.WriteText(env.Stdout, []*engine.Plan{colourPlan()})
		flush(env)
		if strings.Contains(stdout.String(), "\x1b") {
			t.Errorf("-no-color %v, NO_COLOR=%q: an escape sequence in %q", c.noColor, c.env, stdout.String())
		}
	}
	// Not a terminal, no FORCE_COLOR: none.
	t.Setenv("NO_COLOR", "")
	t.Setenv("FORCE_COLOR", "")
	stdout.Reset()
	env = &Env{Stdout: &stdout, Stderr: &bytes.Buffer{}}
	useColor(env, false)
	redact(env, secret.New("Pw-Colour-12345"))
	engine.WriteText(env.Stdout, []*engine.Plan{colourPlan()})
	flush(env)
	if strings.Contains(stdout.String(), "\x1b") {
		t.Errorf("not a terminal: an escape sequence in %q", stdout.String())
	}
}

// The live line: redrawn in place as changes start and end, apply's
// lines printed above it, cut to the terminal's width, gone at the end;
// a driver's own steps are printed but not counted. Not on a terminal
// there is no line at all, only apply's lines.
func TestProgressLine(t *testing.T) {
	p := colourPlan()
	var term bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prog := startProgress(&term, []*engine.Plan{p}, 60)
	prog.now = func() time.Time { return now }
	changes := p.Nodes[0].Changes
	var printed []string
	prog.start("n1", changes[0])
	now = now.Add(3 * time.Second)
	prog.draw()
	prog.event(engine.Event{Node: "n1", Change: changes[0]}, func() { printed = append(printed, "done 1") })
	prog.event(engine.Event{Node: "n1", Change: &engine.ResourceChange{ID: "health-gate"}}, func() { printed = append(printed, "gate") })
	prog.start("n1", changes[1])
	prog.finish()
	prog.draw() // a tick after the end draws nothing
	got := term.String()
	for _, want := range []string{
		"\r\x1b[Kapply: 0 of 3 changes done · n1: x:create /a (0s)",
		"\r\x1b[Kapply: 0 of 3 changes done · n1: x:create /a (3s)",
		"\r\x1b[Kapply: 1 of 3 changes done",
		"\r\x1b[Kapply: 1 of 3 changes done · n1: x:update /b (0s)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in %q", want, got)
		}
	}
	if !strings.HasSuffix(got, "\r\x1b[K") {
		t.Errorf("the line is not cleared at the end: %q", got)
	}
	if len(printed) != 2 {
		t.Errorf("apply's lines: %v", printed)
	}
	for _, l := range strings.Split(got, "\r\x1b[K") {
		if n := len([]rune(l)); n > 59 {
			t.Errorf("a line of %d characters on a 60-column terminal: %q", n, l)
		}
	}

	if got := shortID("conf:/opt/aspera/etc/redis/sentinel_41415.conf"); got != "conf:…is/sentinel_41415.conf" {
		t.Errorf("shortID: %q", got)
	}
	if got := shortID("file:/etc/x"); got != "file:/etc/x" {
		t.Errorf("shortID of a short ID: %q", got)
	}

	// Not a terminal: no progress, apply's lines only.
	var plain bytes.Buffer
	if newProgress(&plain, []*engine.Plan{p}) != nil {
		t.Fatal("a progress line on a buffer")
	}
	var none *progress
	none.start("n1", changes[0])
	none.event(engine.Event{Node: "n1", Change: changes[0]}, func() { printed = append(printed, "plain") })
	none.finish()
	if len(printed) != 3 || plain.Len() != 0 {
		t.Errorf("without a terminal: %v %q", printed, plain.String())
	}
}

// A line's text comes in several writes (WriteText prints a change's
// mark, reason and phase apart): it is coloured once whole. A prompt
// with no newline comes out on endColor, uncoloured, and so does the
// rest of its line.
func TestColourWriterHoldsLines(t *testing.T) {
	var out bytes.Buffer
	c := &colorWriter{w: &out}
	for _, s := range []string{"  ", "~ upd", "ate /b", "   [phase 1: p]\n      +new\nnode n", "1 (h:22)\n"} {
		c.Write([]byte(s))
	}
	want := "  " + sgrYellow + "~" + sgrReset + " update /b   [phase 1: p]\n" + sgrGreen + "      +new" + sgrReset + "\n" + sgrBold + "node n1 (h:22)" + sgrReset + "\n"
	if out.String() != want {
		t.Errorf("got %q\nwant %q", out.String(), want)
	}
	out.Reset()
	env := &Env{Stdout: c, Stderr: &bytes.Buffer{}, color: c}
	c.Write([]byte("\nDo you want to perform these actions? "))
	endColor(env)
	c.Write([]byte("- typed\n  - x\n"))
	if want := "\nDo you want to perform these actions? - typed\n  " + sgrRed + "-" + sgrReset + " x\n"; out.String() != want {
		t.Errorf("got %q\nwant %q", out.String(), want)
	}
}
