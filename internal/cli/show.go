package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/termsafe"
)

func init() {
	register(&Command{
		Name:  "show",
		Short: "print a saved plan (plan -out) as text, JSON or Markdown, without connecting to anything",
		Example: `  hastack plan -out tfplan clusters/
  hastack show tfplan                         # the plan as plan printed it
  hastack show -format markdown tfplan        # for a pull request comment
  hastack show -markdown-out md/ tfplan       # md/plan-1.md, md/plan-2.md ...`,
		Run: runShow,
	})
}

// runShow prints a saved plan. It reads only the file: no config, no
// password, no node. Exit 0 when printed, 1 when the Markdown cannot be
// written, 2 on usage errors (no plan file, an unreadable one).
func runShow(env *Env, args []string) int {
	fs := flags(env, "show", "[flags] PLANFILE")
	var of outputFlags
	of.register(fs, false)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(env.Stderr, "hastack show: give one saved plan (hastack plan -out FILE makes one)")
		return ExitUsage
	}
	if !of.valid(env, "show") {
		return ExitUsage
	}
	path := fs.Arg(0)
	pf, ok, err := engine.ReadPlanFile(path)
	if err == nil && !ok {
		err = fmt.Errorf("%s is not a saved plan (hastack plan -out FILE makes one)", path)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "hastack show: %s\n", termsafe.String(err.Error()))
		return ExitUsage
	}
	// The file may have been edited by anyone: what it holds reaches the
	// terminal escaped, as a node's text does after redact.
	if of.format == "text" {
		useColor(env, of.noColor)
	}
	color := env.color
	safe := termsafe.NewWriter(env.Stdout)
	env.Stdout = safe
	defer func() {
		safe.Flush()
		if color != nil {
			color.Flush()
		}
	}()
	code := of.print(env, "show", pf)
	if of.format == "text" && len(pf.Unreached) > 0 {
		fmt.Fprintf(env.Stdout, "Left out (not reached, -allow-partial): %s\n", strings.Join(pf.Unreached, ", "))
	}
	return code
}

// outputFlags are how plan and show print a plan.
type outputFlags struct {
	format  string
	asJSON  bool // plan's -json, the old name of -format json
	mdLimit int
	mdOut   string
	noColor bool
}

func (o *outputFlags) register(fs *flag.FlagSet, withJSON bool) {
	fs.StringVar(&o.format, "format", "text", "the `FORMAT` of stdout: text, json (docs/plan.md) or markdown (for a pull request comment)")
	if withJSON {
		fs.BoolVar(&o.asJSON, "json", false, "the same as -format json")
	}
	fs.IntVar(&o.mdLimit, "markdown-limit", engine.MarkdownLimit, "at most `N` characters in one Markdown part; a longer plan comes in numbered parts (GitHub takes 65,536 in a comment)")
	fs.StringVar(&o.mdOut, "markdown-out", "", "also write the Markdown plan to `DIR`/plan-1.md, plan-2.md ..., one file per comment to post (any -format)")
	fs.BoolVar(&o.noColor, "no-color", false, "no colour in the text plan (also: NO_COLOR set; none either when stdout is not a terminal)")
}

// valid checks the flags and settles -json into format.
func (o *outputFlags) valid(env *Env, name string) bool {
	if o.asJSON {
		if o.format != "text" && o.format != "json" {
			fmt.Fprintf(env.Stderr, "hastack %s: -json and -format %s: give one of them\n", name, o.format)
			return false
		}
		o.format = "json"
	}
	switch o.format {
	case "text", "json", "markdown":
	default:
		fmt.Fprintf(env.Stderr, "hastack %s: unknown format %q (text, json or markdown)\n", name, o.format)
		return false
	}
	if o.mdLimit < engine.MinMarkdownLimit {
		fmt.Fprintf(env.Stderr, "hastack %s: -markdown-limit must be at least %d\n", name, engine.MinMarkdownLimit)
		return false
	}
	return true
}

// print writes pf to stdout in the chosen format, and the Markdown files
// with -markdown-out. It returns the exit code.
func (o *outputFlags) print(env *Env, name string, pf *engine.PlanFile) int {
	var parts []string
	if o.format == "markdown" || o.mdOut != "" {
		var err error
		if parts, err = engine.Markdown(pf, o.mdLimit); err != nil {
			fmt.Fprintf(env.Stderr, "hastack %s: %v\n", name, err)
			return ExitFailure
		}
	}
	switch o.format {
	case "json":
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(pf)
	case "markdown":
		// Each part starts with its marker line: the parts can be told
		// apart on stdout (docs/plan.md).
		for _, p := range parts {
			fmt.Fprint(env.Stdout, p)
		}
	default:
		engine.WriteText(env.Stdout, pf.Clusters)
	}
	if o.mdOut != "" {
		files, err := writeParts(o.mdOut, parts)
		if err != nil {
			fmt.Fprintf(env.Stderr, "hastack %s: -markdown-out: %v\n", name, err)
			return ExitFailure
		}
		fmt.Fprintf(env.Stderr, "hastack %s: the Markdown plan is in %d part(s): %s\n", name, len(files), strings.Join(files, " "))
	}
	return ExitOK
}

var partFile = regexp.MustCompile(`^plan-([1-9][0-9]*)\.md$`)

// writeParts writes the parts to dir/plan-1.md ... each atomically, and
// removes the plan-K.md an earlier, longer plan left there (a workflow
// posting dir/plan-*.md would post them too). Nothing else in dir is
// touched.
func writeParts(dir string, parts []string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for i, p := range parts {
		path := filepath.Join(dir, fmt.Sprintf("plan-%d.md", i+1))
		if err := writeFileAtomic(path, []byte(p)); err != nil {
			return nil, err
		}
		files = append(files, path)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		m := partFile.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		if k, err := strconv.Atoi(m[1]); err == nil && k > len(parts) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// writeFileAtomic writes a new file beside path and renames it over path:
// a reader (a workflow step) never sees half a part.
func writeFileAtomic(path string, b []byte) (err error) {
	tmp := host.TempName(path)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(b); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
