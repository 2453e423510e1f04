package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cuelang.org/go/cue"
)

// A user's own stack (hastack.dev/schema/stack): the lines below are
// numbered as the file is written, so a problem's position can be checked.
const webStack = `package web

import "hastack.dev/schema/stack"

stacks: web: stack.#Stack & {
	port: 8080
	nodes: [for i in [1, 2] {
		name: "web\(i)"
		ip:   "10.0.0.\(i)"
		resources: [
			{id: "package:nginx", kind: "package", phase: 0, spec: names: ["nginx"]},
			{id: "file:/etc/nginx/conf.d/site.conf", kind: "file", phase: 1, spec: {path: "/etc/nginx/conf.d/site.conf", content: "listen \(port);\n", owner: "root", group: "root", mode: "0644"}},
			{id: "service:nginx", kind: "service", phase: 2, watch: ["file:/etc/nginx/conf.d/site.conf"], spec: {unit: "nginx", enabled: true, running: true, reload: true}},
		]
	}]
	phases: [{name: "packages"}, {name: "site"}, {name: "services", batches: [1, "100%"]}]
}
`

// writeStack writes src as web.cue, with old replaced by new (once; the
// test fails when old is not there).
func writeStack(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(webStack, old) {
		t.Fatalf("%q is not in the stack", old)
	}
	dir := t.TempDir()
	src := strings.Replace(webStack, old, new, 1)
	if err := os.WriteFile(filepath.Join(dir, "web.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadUserStack(t *testing.T) {
	cfg, ps, err := Load(writeStack(t, "", ""))
	if err != nil || len(ps) > 0 {
		t.Fatalf("err=%v problems:\n%v", err, ps)
	}
	res := cfg.Root.LookupPath(cue.ParsePath(`stacks.web.nodes[1].resources[1].spec.content`))
	if s, err := res.String(); err != nil || s != "listen 8080;\n" {
		t.Errorf("the stack's input did not reach its resource: %q, %v", s, err)
	}
	ssh := cfg.Root.LookupPath(cue.ParsePath(`stacks.web.nodes[0].ssh`))
	var got SSH
	if err := ssh.Decode(&got); err != nil || got != (SSH{Host: "10.0.0.1", Port: 22, User: "root"}) {
		t.Errorf("ssh defaults: %+v, %v", got, err)
	}
}

// Each mistake is one problem at the user's file:line:col (in both nodes,
// which the comprehension makes from the same line).
func TestUserStackProblems(t *testing.T) {
	for _, tc := range []struct {
		name, old, new string
		// want is "AT|path: message": the problem is where the changed
		// source first holds AT.
		want []string
	}{{
		name: "typo in a spec",
		old:  `spec: {path: "/etc/nginx/conf.d/site.conf"`, new: `spec: {pahth: "/etc/nginx/conf.d/site.conf"`,
		want: []string{
			`spec: {pahth|stacks.web.nodes[0].resources[1].spec.path: field is required but not present`,
			`spec: {pahth|stacks.web.nodes[1].resources[1].spec.path: field is required but not present`,
			`pahth|stacks.web.nodes[0].resources[1].spec.pahth: unknown field "pahth" (did you mean "path"?)`,
			`pahth|stacks.web.nodes[1].resources[1].spec.pahth: unknown field "pahth" (did you mean "path"?)`,
		},
	}, {
		name: "typo in a resource",
		old:  `watch: [`, new: `wacth: [`,
		want: []string{
			`wacth|stacks.web.nodes[0].resources[2].wacth: unknown field "wacth" (did you mean "watch"?)`,
			`wacth|stacks.web.nodes[1].resources[2].wacth: unknown field "wacth" (did you mean "watch"?)`,
		},
	}, {
		name: "typo of a stack field",
		old:  `phases: [{name`, new: `phses: [{name`,
		want: []string{
			`phses|stacks.web.phses: unknown field "phses" (did you mean "phases"?)`,
		},
	}, {
		name: "unknown kind",
		old:  `kind: "service"`, new: `kind: "servic"`,
		want: []string{
			`kind: "servic"|stacks.web.nodes[0].resources[2].kind: unknown kind "servic": want one of file, dir, conf, command, service, firewall, package, user, group, symlink, sysctl, asconf, sentinelreset`,
			`kind: "servic"|stacks.web.nodes[1].resources[2].kind: unknown kind "servic": want one of file, dir, conf, command, service, firewall, package, user, group, symlink, sysctl, asconf, sentinelreset`,
		},
	}, {
		name: "missing required field",
		old:  `spec: {unit: "nginx", `, new: `spec: {`,
		want: []string{
			`spec: {enabled|stacks.web.nodes[0].resources[2].spec.unit: field is required but not present`,
			`spec: {enabled|stacks.web.nodes[1].resources[2].spec.unit: field is required but not present`,
		},
	}, {
		name: "bad batch",
		old:  `batches: [1, "100%"]`, new: `batches: [0, "150%"]`,
		want: []string{
			`0, "150%"|stacks.web.phases[2].batches[0]: invalid value 0 (out of bound >=1)`,
			`"150%"|stacks.web.phases[2].batches[1]: invalid value "150%" (out of bound =~"^([1-9][0-9]?|100)%$")`,
		},
	}, {
		name: "serial and batches",
		old:  `{name: "services", `, new: `{name: "services", serial: true, `,
		want: []string{
			`batches: [1, "100%"]|stacks.web.phases[2].batches: serial and batches are both set: serial: true is batches: [1]`,
		},
	}, {
		name: "phase out of range",
		old:  `kind: "package", phase: 0`, new: `kind: "package", phase: 3`,
		want: []string{
			`phase: 3|stacks.web.nodes[0].resources[0].phase: invalid value 3 (out of bound <3)`,
			`phase: 3|stacks.web.nodes[1].resources[0].phase: invalid value 3 (out of bound <3)`,
		},
	}, {
		name: "wrong type in a spec",
		old:  `running: true`, new: `running: "yes"`,
		want: []string{
			`running: "yes"|stacks.web.nodes[0].resources[2].spec.running: conflicting values "yes" and bool (mismatched types string and bool)`,
			`running: "yes"|stacks.web.nodes[1].resources[2].spec.running: conflicting values "yes" and bool (mismatched types string and bool)`,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeStack(t, tc.old, tc.new)
			src := strings.Replace(webStack, tc.old, tc.new, 1)
			_, ps, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			var got, want []string
			for _, p := range ps {
				if abs, err := filepath.Abs(p.File); err == nil && p.File != "" {
					p.File, _ = filepath.Rel(dir, abs)
				}
				got = append(got, p.String())
			}
			for _, w := range tc.want {
				at, msg, _ := strings.Cut(w, "|")
				want = append(want, positionOf(t, src, at)+": "+msg)
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// positionOf is web.cue:LINE:COL of the first at in src.
func positionOf(t *testing.T, src, at string) string {
	t.Helper()
	i := strings.Index(src, at)
	if i < 0 {
		t.Fatalf("%q is not in the source", at)
	}
	line := strings.Count(src[:i], "\n") + 1
	col := i - strings.LastIndex(src[:i], "\n")
	return fmt.Sprintf("web.cue:%d:%d", line, col)
}

// A stack's own inputs (port above) are not typos; a near miss of a stack
// field the user did not write is.
func TestStackInputsAreNotTypos(t *testing.T) {
	_, ps, err := Load(writeStack(t, "\tport: 8080\n", "\tport: 8080\n\tdrvier: \"x\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Msg != `unknown field "drvier" (did you mean "driver"?)` || ps[0].Line != 7 {
		t.Errorf("want one problem at line 7 for drvier, got:\n%v", ps)
	}
}
