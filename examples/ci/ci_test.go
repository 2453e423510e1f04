// Package ci holds the pipelines of examples/ci; its test checks them
// (actionlint is not packaged for Debian): their triggers, that the saved
// plan apply reads is the one plan wrote, that no secret reaches a command
// line or the log, and that every hastack command line in them runs with
// the real command line against canned nodes (internal/fixture).
package ci

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/encoding/yaml"
	"github.com/rogpeppe/go-internal/txtar"

	"hastack.dev/hastack/internal/cli"
	_ "hastack.dev/hastack/internal/fixture" // HASTACK_CONNECTOR=fixture:DIR
)

// load decodes a YAML file (CUE's decoder: YAML 1.2, so `on` is a key).
func load(t *testing.T, path string) map[string]any {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := yaml.Extract(path, src)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	v := cuecontext.New().BuildFile(f)
	var m map[string]any
	if err := v.Decode(&m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func mapOf(v any) map[string]any { m, _ := v.(map[string]any); return m }
func listOf(v any) []any         { l, _ := v.([]any); return l }
func str(v any) string           { s, _ := v.(string); return s }

// expr matches a GitHub expression, ${{ ... }}.
var expr = regexp.MustCompile(`\$\{\{\s*([^}]*?)\s*\}\}`)

// A step or job of either pipeline, as the checks see it.
type step struct {
	job    string
	name   string
	uses   string
	with   map[string]any
	env    map[string]string // the step's own env (GitHub)
	script string            // run (GitHub), or one script line (GitLab)
}

// hastackCmd is one hastack command line of a script.
type hastackCmd struct {
	job  string
	line string
	args []string // after "hastack", variables expanded
}

// expand reads the words of one shell command line the way sh would for
// the simple lines hastack is called on: quotes, $VAR and ${VAR}; it stops
// at the first unquoted operator (> | & ;).
func expand(line string, vars map[string]string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	varAt := func(s string, i int) (string, int) {
		if i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", len(s)
			}
			return vars[s[i+2:i+end]], i + end + 1
		}
		j := i + 1
		for j < len(s) && (s[j] == '_' || 'A' <= s[j] && s[j] <= 'Z' || 'a' <= s[j] && s[j] <= 'z' || '0' <= s[j] && s[j] <= '9') {
			j++
		}
		return vars[s[i+1:j]], j
	}
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, w.String()), false
				w.Reset()
			}
			i++
		case strings.IndexByte("><|&;", c) >= 0:
			i = len(line)
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				end = len(line) - i - 1 // unclosed: the rest
			}
			w.WriteString(line[i+1 : i+1+end])
			inWord, i = true, i+end+2
		case c == '"':
			i++
			for i < len(line) && line[i] != '"' {
				if line[i] == '$' {
					v, j := varAt(line, i)
					w.WriteString(v)
					i = j
					continue
				}
				w.WriteByte(line[i])
				i++
			}
			inWord, i = true, i+1
		case c == '$':
			v, j := varAt(line, i)
			w.WriteString(v)
			inWord, i = true, j
		default:
			w.WriteByte(c)
			inWord, i = true, i+1
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// hastackLines finds the hastack command lines of a script (a line
// continued with a backslash is one line).
func hastackLines(job, script string, vars map[string]string) []hastackCmd {
	var out []hastackCmd
	for _, l := range strings.Split(strings.ReplaceAll(script, "\\\n", " "), "\n") {
		l = strings.TrimSpace(l)
		words := expand(l, vars)
		for i, w := range words {
			if w == "hastack" || strings.HasSuffix(w, "/hastack") && !strings.Contains(l, "go build") && !strings.Contains(l, "chmod") {
				out = append(out, hastackCmd{job: job, line: l, args: words[i+1:]})
				break
			}
		}
	}
	return out
}

func cmdsOf(cmds []hastackCmd, job, sub string) []hastackCmd {
	var out []hastackCmd
	for _, c := range cmds {
		if c.job == job && len(c.args) > 0 && c.args[0] == sub {
			out = append(out, c)
		}
	}
	return out
}

// flagValue is the value of flag name in args (-name V or -name=V).
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		a = "-" + strings.TrimLeft(a, "-")
		if a == "-"+name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "-"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		a = "-" + strings.TrimLeft(a, "-")
		if a == "-"+name || strings.HasPrefix(a, "-"+name+"=") {
			return true
		}
	}
	return false
}

// secretEnvs are the variables that carry a secret into a script.
var secretEnvs = []string{"SSH_KEY", "KNOWN_HOSTS", "SSH_CONFIG", "REDIS_PASSWORD",
	"HASTACK_SSH_KEY", "HASTACK_KNOWN_HOSTS", "HASTACK_SSH_CONFIG", "HASTACK_REDIS_PASSWORD", "HASTACK_GITLAB_TOKEN"}

// fileWrite is the one way a script may use a secret: printf or cp of it
// into a file (not the log, not a command's arguments).
var fileWrite = regexp.MustCompile(`^(printf '[^']*' "\$[A-Z_]+" > "[^"]+"|cp "\$[A-Z_]+" "[^"]+")$`)

// checkSecretUse fails when a script line names a secret variable other
// than to write it to a file, or traces the shell.
func checkSecretUse(t *testing.T, where, script string) {
	t.Helper()
	for _, l := range strings.Split(script, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "set -x") || strings.HasPrefix(l, "set -o xtrace") {
			t.Errorf("%s: %q traces every command into the log", where, l)
		}
		for _, v := range secretEnvs {
			if regexp.MustCompile(`\$\{?`+v+`\b`).MatchString(l) && !fileWrite.MatchString(l) {
				t.Errorf("%s: %q uses secret $%s other than to write it to a file", where, l, v)
			}
		}
	}
}

// sandbox is where a pipeline's hastack commands run: the config of a
// canned 3-node cluster that drifted (testdata's fixture_sentinel_drift)
// as the pipeline's config folder, its password in the file the secrets
// step writes, and the fixture connector in place of SSH.
type sandbox struct {
	dir   string
	files string // $HASTACK_FILES
}

func newSandbox(t *testing.T, config, files string) *sandbox {
	t.Helper()
	ar, err := txtar.ParseFile("../../testdata/scripts/fixture_sentinel_drift.txtar")
	if err != nil {
		t.Fatal(err)
	}
	sb := &sandbox{dir: t.TempDir()}
	sb.files = filepath.Join(sb.dir, files)
	for _, f := range ar.Files {
		name, ok := strings.CutPrefix(f.Name, "cluster/")
		dst := filepath.Join(sb.dir, config, name)
		if !ok {
			if !strings.HasPrefix(f.Name, "nodes/") {
				continue
			}
			dst = filepath.Join(sb.dir, f.Name)
		}
		data := f.Data
		if ok {
			// The pipelines' convention: the password in the file the
			// secrets step writes.
			data = bytes.Replace(data, []byte(`secret: env: "HASTACK_REDIS_PASSWORD"`),
				[]byte(`secret: file: "`+filepath.Join(sb.files, "redis-password")+`"`), 1)
			if bytes.Equal(data, f.Data) {
				t.Fatal("the fixture's config no longer reads the password from HASTACK_REDIS_PASSWORD")
			}
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// What the secrets step writes, 0600 in a 0700 folder.
	if err := os.MkdirAll(sb.files, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"redis-password": "fixture-password-not-a-secret",
		"ssh_config":     "Host bastion\n\tHostName 192.0.2.1\n\tUser jump\nHost node*\n\tProxyJump bastion\n",
		"known_hosts":    "",
		"id":             "",
		"api-header":     "PRIVATE-TOKEN: x\n",
	} {
		if err := os.WriteFile(filepath.Join(sb.files, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(sb.dir)
	t.Setenv("HASTACK_CONNECTOR", "fixture:"+filepath.Join(sb.dir, "nodes"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(sb.dir, "cache"))
	t.Setenv("HOME", sb.dir) // no ~/.ssh of the machine running the test
	t.Setenv("NO_COLOR", "1")
	for _, v := range []string{"HASTACK_SSH_CONFIG", "HASTACK_KNOWN_HOSTS", "HASTACK_IDENTITY", "HASTACK_LAB"} {
		t.Setenv(v, "")
	}
	return sb
}

// run runs a pipeline's hastack command line with the real command line,
// as the binary would.
func (sb *sandbox) run(t *testing.T, c hastackCmd) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = cli.Run(&cli.Env{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e}, c.args)
	for _, bad := range []string{"flag provided but not defined", "invalid value", "flag needs an argument", "usage:", "give at most", "unknown format"} {
		if strings.Contains(e.String(), bad) {
			t.Errorf("%s: %q: hastack refuses its command line:\n%s", c.job, c.line, e.String())
		}
	}
	if strings.Contains(o.String()+e.String(), "fixture-password-not-a-secret") {
		t.Errorf("%s: %q printed the password", c.job, c.line)
	}
	return code, o.String(), e.String()
}

// walk calls f with every string of v and where it is.
func walk(v any, at string, f func(at, s string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			walk(e, at+"."+k, f)
		}
	case []any:
		for i, e := range x {
			walk(e, at+"["+string(rune('0'+i%10))+"]", f)
		}
	case string:
		f(at, x)
	}
}

func stringMap(v any) map[string]string {
	out := map[string]string{}
	for k, e := range mapOf(v) {
		out[k] = str(e)
	}
	return out
}

func merged(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// planned is what every pipeline must do, checked on its hastack lines and
// then run in the sandbox: vet on a push; plan -out on a review, the saved
// file kept (keptAs) and shown as Markdown; apply of that very file as
// fetched (fetchedTo) on merge; plan -detailed-exitcode on a schedule.
type planned struct {
	cmds                         []hastackCmd
	vetJob, planJob, applyJob    string
	driftJob                     string
	keptAs, fetchedTo, configDir string // paths as the scripts name them
	vetFormat                    string
}

func (p planned) check(t *testing.T, sb *sandbox) {
	t.Helper()
	one := func(job, sub string) hastackCmd {
		t.Helper()
		cs := cmdsOf(p.cmds, job, sub)
		if len(cs) != 1 {
			t.Fatalf("job %s: %d hastack %s lines, want 1: %+v", job, len(cs), sub, p.cmds)
		}
		return cs[0]
	}
	vet, plan, apply, drift := one(p.vetJob, "vet"), one(p.planJob, "plan"), one(p.applyJob, "apply"), one(p.driftJob, "plan")
	if f, _ := flagValue(vet.args, "format"); f != p.vetFormat {
		t.Errorf("vet: -format %q, want %q", f, p.vetFormat)
	}
	out, ok := flagValue(plan.args, "out")
	if !ok || out != p.keptAs {
		t.Errorf("plan saves %q, the job keeps %q", out, p.keptAs)
	}
	if _, ok := flagValue(plan.args, "markdown-out"); !ok {
		t.Errorf("plan: %q, want the Markdown parts to post (-markdown-out)", plan.args)
	}
	if got := apply.args[len(apply.args)-1]; got != p.fetchedTo || filepath.Base(got) != filepath.Base(out) {
		t.Errorf("apply applies %q; the saved plan is fetched to %q from %q", got, p.fetchedTo, out)
	}
	if cmdsOf(p.cmds, p.applyJob, "plan") != nil || hasFlag(apply.args, "auto-approve") {
		t.Errorf("the apply job plans again or applies a folder: %+v", cmdsOf(p.cmds, p.applyJob, ""))
	}
	if !hasFlag(drift.args, "detailed-exitcode") || hasFlag(drift.args, "out") {
		t.Errorf("drift: %q, want plan -detailed-exitcode (and no saved plan)", drift.args)
	}
	for _, c := range []hastackCmd{plan, apply, drift} {
		for _, f := range []string{"F", "known-hosts", "i"} {
			if v, ok := flagValue(c.args, f); !ok || !strings.HasPrefix(v, sb.files+"/") {
				t.Errorf("%s: -%s %q, want a file the secrets step wrote", c.line, f, v)
			}
		}
	}
	if t.Failed() {
		return
	}

	// The same lines, run.
	if code, _, e := sb.run(t, vet); code != 0 {
		t.Errorf("vet exited %d:\n%s", code, e)
	}
	// plan -out takes the cluster's lock, which a fixture node cannot
	// hold: in the sandbox only, the saved plan is made without it.
	if code, _, e := sb.run(t, plan); code != 1 || !strings.Contains(e, "this connector cannot hold a lock") {
		t.Errorf("plan -out exited %d, want 1 at the lock of a fixture node:\n%s", code, e)
	}
	if code, _, e := sb.run(t, withFlag(plan, "-lock=false")); code != 0 {
		t.Fatalf("plan exited %d:\n%s", code, e)
	}
	parts := mdParts(t, plan)
	if len(parts) == 0 {
		t.Errorf("show gave no Markdown part")
	}
	for _, part := range parts {
		if len(part) >= 65000 || !strings.HasPrefix(part, "<!-- hastack plan: part ") || !strings.Contains(part, "node2") {
			t.Errorf("a part of %d bytes that is not a plan of the drifted nodes:\n%.300s", len(part), part)
		}
	}
	// The artifact: the file plan wrote, where the apply job fetches it.
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(p.fetchedTo), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.fetchedTo, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// A fixture node holds no lock: apply gets as far as taking it, so it
	// read the saved plan and connected (any earlier refusal, such as a
	// stale or unreadable plan, says otherwise).
	if code, _, e := sb.run(t, apply); code != 1 || !strings.Contains(e, "this connector cannot hold a lock") {
		t.Errorf("apply exited %d, want 1 at the lock of a fixture node:\n%s", code, e)
	}
	// Without the lock it applies: the saved plan is not stale, and the
	// fixture refuses the first change.
	if code, o, e := sb.run(t, withFlag(apply, "-lock=false")); code != 1 || !strings.Contains(e, "fixtures are for plans, not applies") || !strings.Contains(o, "node2") {
		t.Errorf("apply -lock=false exited %d, want 1 at the first change:\n%s\n%s", code, o, e)
	}
	// A node that changed since the plan makes it stale: refused.
	conf := filepath.Join(sb.dir, "nodes/node3/files/opt/aspera/etc/redis/aspera_31415.conf")
	b, err = os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, bytes.Replace(b, []byte("save 1 1"), []byte("save 2 2"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, e := sb.run(t, withFlag(apply, "-lock=false")); code != 1 || !strings.Contains(e, "the saved plan is stale: node node3 changed") {
		t.Errorf("apply of a plan a node changed since exited %d, want refused as stale:\n%s", code, e)
	}
	// The fixture's nodes drifted: the check says so.
	if code, _, e := sb.run(t, drift); code != 2 {
		t.Errorf("drift check exited %d, want 2 (drift):\n%s", code, e)
	}
}

// withFlag is c with flag f put before its other arguments.
func withFlag(c hastackCmd, f string) hastackCmd {
	c.args = append([]string{c.args[0], f}, c.args[1:]...)
	c.line += " (" + f + ")"
	return c
}

// mdParts are the Markdown parts plan wrote to its -markdown-out folder,
// in the order a pipeline posts them (plan-1.md, plan-2.md ...).
func mdParts(t *testing.T, plan hastackCmd) []string {
	t.Helper()
	dir, _ := flagValue(plan.args, "markdown-out")
	var out []string
	for i := 1; ; i++ {
		b, err := os.ReadFile(filepath.Join(dir, "plan-"+strconv.Itoa(i)+".md"))
		if os.IsNotExist(err) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
}

func TestGitHubWorkflow(t *testing.T) {
	wf := load(t, ".github/workflows/hastack.yml")
	on := mapOf(wf["on"])
	for _, k := range []string{"push", "pull_request", "schedule", "workflow_dispatch"} {
		if _, ok := on[k]; !ok {
			t.Errorf("on: lacks %s", k)
		}
	}
	types := listOf(mapOf(on["pull_request"])["types"])
	for _, ty := range []string{"opened", "synchronize", "reopened", "closed"} {
		if !slices.Contains(types, any(ty)) {
			t.Errorf("pull_request types %v lack %s", types, ty)
		}
	}
	if s := listOf(on["schedule"]); len(s) == 0 || str(mapOf(s[0])["cron"]) == "" {
		t.Errorf("schedule: %v, want a cron", s)
	}
	jobs := mapOf(wf["jobs"])
	for job, want := range map[string][]string{
		"vet":   {"github.event_name == 'push'"},
		"plan":  {"github.event_name == 'pull_request'", "github.event.action != 'closed'", "head.repo.full_name == github.repository"},
		"apply": {"github.event.action == 'closed'", "github.event.pull_request.merged", "head.repo.full_name == github.repository"},
		"drift": {"github.event_name == 'schedule'"},
	} {
		cond := str(mapOf(jobs[job])["if"])
		for _, w := range want {
			if !strings.Contains(cond, w) {
				t.Errorf("job %s runs if %q, which lacks %q", job, cond, w)
			}
		}
	}
	// A secret only in a step's env, never in a script or anywhere else;
	// no expression in a script (an expression is pasted into the script
	// before the shell reads it: an injection).
	walk(wf, "", func(at, s string) {
		if strings.Contains(s, "secrets.") && !regexp.MustCompile(`^\.jobs\.\w+\.steps\[\d\]\.env\.\w+$`).MatchString(at) {
			t.Errorf("%s names a secret outside a step's env: %q", at, s)
		}
		if strings.HasSuffix(at, ".run") && strings.Contains(s, "${{") {
			t.Errorf("%s: an expression in a script: %q", at, s)
		}
	})

	sb := newSandbox(t, "clusters", "hastack-ci")
	wfEnv := stringMap(wf["env"])
	if wfEnv["HASTACK_FILES"] == "" || wfEnv["HASTACK_CONFIG"] != "clusters/" {
		t.Fatalf("workflow env: %v", wfEnv)
	}
	head := "0123456789abcdef0123456789abcdef01234567"
	vars := merged(wfEnv, map[string]string{"HASTACK_FILES": sb.files, "RUNNER_TEMP": filepath.Join(sb.dir, "runner"),
		"GITHUB_STEP_SUMMARY": filepath.Join(sb.dir, "summary.md"), "GITHUB_REPOSITORY": "o/r", "HEAD_SHA": head})
	ghExpr := func(s string) string {
		return expr.ReplaceAllStringFunc(s, func(m string) string {
			e := expr.FindStringSubmatch(m)[1]
			switch {
			case e == "github.event.pull_request.head.sha":
				return head
			case strings.HasPrefix(e, "env."):
				return vars[strings.TrimPrefix(e, "env.")]
			case e == "runner.temp":
				return vars["RUNNER_TEMP"]
			}
			return "X"
		})
	}
	p := planned{vetJob: "vet", planJob: "plan", applyJob: "apply", driftJob: "drift", vetFormat: "github"}
	var kept, fetchedName, fetchedDir string
	for job, j := range jobs {
		for i, s := range listOf(mapOf(j)["steps"]) {
			s := mapOf(s)
			run := str(s["run"])
			checkSecretUse(t, job+" step "+string(rune('0'+i)), run)
			stepVars := merged(vars, stringMap(mapOf(j)["env"]), stringMap(s["env"]))
			for k, v := range stepVars {
				stepVars[k] = ghExpr(v)
			}
			p.cmds = append(p.cmds, hastackLines(job, run, stepVars)...)
			with := mapOf(s["with"])
			switch uses := str(s["uses"]); {
			case job == "plan" && strings.HasPrefix(uses, "actions/upload-artifact@"):
				kept, p.keptAs = ghExpr(str(with["name"])), ghExpr(str(with["path"]))
			case job == "apply" && strings.HasPrefix(uses, "actions/checkout@"):
				if ref := str(with["ref"]); ref != "${{ github.event.pull_request.head.sha }}" {
					t.Errorf("apply checks out %q, not the planned head", ref)
				}
			}
			if job == "apply" {
				for _, l := range strings.Split(strings.ReplaceAll(run, "\\\n", " "), "\n") {
					if w := expand(strings.TrimSpace(l), stepVars); len(w) > 3 && w[0] == "gh" && w[1] == "run" && w[2] == "download" {
						fetchedName, _ = flagValue(w, "name")
						fetchedDir, _ = flagValue(w, "dir")
					}
				}
			}
		}
	}
	if kept == "" || kept != fetchedName {
		t.Errorf("the plan job keeps artifact %q, the apply job fetches %q", kept, fetchedName)
	}
	if !strings.Contains(kept, head) {
		t.Errorf("artifact %q is not named after the planned head", kept)
	}
	p.fetchedTo = filepath.Join(fetchedDir, filepath.Base(p.keptAs))
	p.check(t, sb)
}

func TestGitLabPipeline(t *testing.T) {
	pl := load(t, ".gitlab-ci.yml")
	var rules []string
	for _, r := range listOf(mapOf(pl["workflow"])["rules"]) {
		rules = append(rules, str(mapOf(r)["if"]))
	}
	for _, w := range []string{`$CI_PIPELINE_SOURCE == "merge_request_event"`, `$CI_PIPELINE_SOURCE == "push"`, `$CI_PIPELINE_SOURCE == "schedule"`} {
		if !slices.Contains(rules, w) {
			t.Errorf("workflow rules %q lack %s", rules, w)
		}
	}
	jobRule := func(job string) string {
		var out []string
		for _, r := range listOf(mapOf(pl[job])["rules"]) {
			out = append(out, str(mapOf(r)["if"]))
		}
		return strings.Join(out, " || ")
	}
	for job, want := range map[string]string{
		"vet":   `$CI_PIPELINE_SOURCE != "schedule"`,
		"plan":  `$CI_PIPELINE_SOURCE == "merge_request_event"`,
		"apply": `$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH`,
		"drift": `$CI_PIPELINE_SOURCE == "schedule"`,
	} {
		if got := jobRule(job); got != want {
			t.Errorf("job %s runs if %q, want %q", job, got, want)
		}
	}
	sb := newSandbox(t, "clusters", "hastack-ci")
	vars := merged(stringMap(pl["variables"]), map[string]string{"HASTACK_FILES": sb.files, "CI_PROJECT_DIR": sb.dir,
		"CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567"})
	if vars["HASTACK_CONFIG"] != "clusters/" {
		t.Fatalf("variables: %v", vars)
	}
	p := planned{vetJob: "vet", planJob: "plan", applyJob: "apply", driftJob: "drift", vetFormat: ""}
	for job, j := range pl {
		j := mapOf(j)
		if strings.HasPrefix(job, ".") || j == nil || j["stage"] == nil {
			continue
		}
		lines := listOf(j["script"])
		if ext := str(j["extends"]); ext != "" {
			lines = append(listOf(mapOf(pl[ext])["before_script"]), lines...)
		}
		jobVars := merged(vars, stringMap(j["variables"]))
		for _, l := range lines {
			checkSecretUse(t, job, str(l))
			p.cmds = append(p.cmds, hastackLines(job, str(l), jobVars)...)
			// The artifact fetched by the apply job: "...artifacts/FILE" > "TO".
			if m := regexp.MustCompile(`artifacts/\$PLAN_FILE" > ("[^"]+")`).FindStringSubmatch(str(l)); job == "apply" && m != nil {
				p.fetchedTo = expand(m[1], jobVars)[0]
			}
		}
		if job == "plan" {
			for _, a := range listOf(mapOf(j["artifacts"])["paths"]) {
				p.keptAs = str(a)
			}
		}
		if job == "apply" && !strings.Contains(strings.Join(strings.Fields(strings.Join(func() []string {
			var s []string
			for _, l := range lines {
				s = append(s, str(l))
			}
			return s
		}(), "\n")), " "), `git checkout --detach "$head"`) {
			t.Errorf("the apply job does not check out the planned head")
		}
	}
	p.check(t, sb)
}
