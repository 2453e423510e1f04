package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"hastack.dev/hastack/internal/lab"
)

// The example's site file and what the hand edit below does to it.
const (
	webSite     = "/etc/nginx/sites-available/www.example.com"
	webIndex    = "<h1>Hello from www.example.com</h1>\n"
	webPidFile  = "/run/lab-systemd/nginx.service.pid"
	webUnitLog  = "/var/log/lab/nginx.service.log"
	webTryFiles = "\t\ttry_files $uri $uri/ =404;"
	webDrift    = "\t\treturn 418;"
)

// TestWeb is issue 9's proof that a stack written only in CUE
// (examples/web, unchanged but for its inventory) runs on real sshd and
// Debian's nginx: apply from fresh, an empty plan, the index served to the
// controller and across the nodes, a hand edit on one node seen as exactly
// that diff, fixed by apply with one reload of that node's nginx (same
// master, the fixed config served), and a typo in a resource a vet error
// at the user's file:line:col that touches nothing.
func TestWeb(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
		t.Skip("needs Debian's nginx (tools/deps.sh)")
	}
	l := lab.Start(t, 3)
	dir := webConfig(t, l, "")
	hastack := (&cluster{t: t, lab: l, dir: dir}).must
	node := func(name string, argv ...string) string {
		t.Helper()
		out, err := l.Exec(t.Context(), name, argv...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return string(out)
	}

	hastack(0, "vet")
	// Fails today: modules/file.go's fileChange (lines 53-60) wants a
	// file's owner and group in the node's passwd/group at plan time, so
	// index.html, owned by the account the same apply creates two phases
	// earlier, makes the whole plan an error on a fresh node.
	hastack(0, "apply", "-auto-approve")
	if out := hastack(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
		t.Fatal("the plan after apply is not empty")
	}
	for _, n := range l.Nodes {
		if got := node(n.Name, "stat", "-c", "%U:%G %u:%g %a", "/srv/www/index.html"); got != "webdata:webdata 2080:2080 644\n" {
			t.Errorf("%s: index.html is %q, want webdata's (2080:2080), 0644", n.Name, got)
		}
		if got := node(n.Name, "readlink", "/etc/nginx/sites-enabled/www.example.com"); got != "../sites-available/www.example.com\n" {
			t.Errorf("%s: sites-enabled link points to %q", n.Name, got)
		}
		if _, err := l.Exec(t.Context(), n.Name, "test", "-e", "/etc/nginx/sites-enabled/default"); err == nil {
			t.Errorf("%s: Debian's default site is still enabled", n.Name)
		}
	}

	// The index, from the controller (a client of the stack) and from
	// the next node (the firewall opens 80 to the stack's nodes).
	get := func(from, ip string) (string, error) {
		argv := []string{"curl", "-sS", "--max-time", "5", "http://" + ip + "/"}
		var out []byte
		var err error
		if from == "" {
			out, err = l.ExecController(t.Context(), argv...)
		} else {
			out, err = l.Exec(t.Context(), from, argv...)
		}
		return string(out), err
	}
	for i, n := range l.Nodes {
		if got, err := get("", n.IP); err != nil || got != webIndex {
			t.Errorf("controller → %s: %q, %v; want the index", n.Name, got, err)
		}
		from := l.Nodes[(i+1)%len(l.Nodes)].Name
		if got, err := get(from, n.IP); err != nil || got != webIndex {
			t.Errorf("%s → %s: %q, %v; want the index", from, n.Name, got, err)
		}
		rules := node(n.Name, "iptables", "-S", "WEB")
		if !strings.Contains(rules, "-A WEB -s "+l.ControllerIP+"/32 -p tcp -m tcp --dport 80 -j ACCEPT") ||
			!strings.Contains(rules, "-A WEB -p tcp -m tcp --dport 80 -j REJECT") {
			t.Errorf("%s: chain WEB does not accept the controller and reject the rest on 80:\n%s", n.Name, rules)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// An admin edits the site on node2 and reloads nginx by hand: node2
	// serves the edit.
	pids := map[string]string{}
	reloads := map[string]int{}
	for _, n := range l.Nodes {
		pids[n.Name] = node(n.Name, "cat", webPidFile)
	}
	node("node2", "sed", "-i", `s|try_files \$uri \$uri/ =404;|return 418;|`, webSite)
	node("node2", "systemctl", "reload", "nginx")
	n2, _ := l.Node("node2")
	if got := webAnswer(t, l, n2.IP, "418"); got != "418" {
		t.Fatalf("node2 answers %q after the hand edit and reload, want 418", got)
	}
	for _, n := range l.Nodes {
		reloads[n.Name] = strings.Count(node(n.Name, "cat", webUnitLog), " reloading\n")
	}

	code, out := runHastack(t, l.Dir, dir, nil, "plan", "-detailed-exitcode")
	if code != 2 {
		t.Errorf("plan after the hand edit exited %d, want 2", code)
	}
	if want := webDriftPlan(l); out != want {
		t.Errorf("the plan after the hand edit is not exactly that drift; want:\n%s", want)
	}

	out = hastack(0, "apply", "-auto-approve")
	if regexp.MustCompile(`(?m)^node[13]: `).MatchString(out) {
		t.Error("apply acted on node1 or node3, which did not drift")
	}
	if got := node("node2", "cat", webSite); !strings.Contains(got, webTryFiles+"\n") || strings.Contains(got, webDrift) {
		t.Errorf("apply did not restore node2's site file:\n%s", got)
	}
	for _, n := range l.Nodes {
		want := reloads[n.Name]
		if n.Name == "node2" {
			want++
		}
		if got := strings.Count(node(n.Name, "cat", webUnitLog), " reloading\n"); got != want {
			t.Errorf("%s: nginx reloaded %d times in all, want %d", n.Name, got, want)
		}
		if got := node(n.Name, "cat", webPidFile); got != pids[n.Name] {
			t.Errorf("%s: nginx's master changed from %s to %s: restarted, not reloaded", n.Name, pids[n.Name], got)
		}
		if got := webAnswer(t, l, n.IP, "200 "+webIndex); got != "200 "+webIndex {
			t.Errorf("controller → %s after apply: %q; want the index", n.Name, got)
		}
	}
	if out := hastack(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
		t.Error("the plan after the fix is not empty")
	}

	t.Run("typo", func(t *testing.T) { webTypo(t, l) })
}

// webTypo: the example with one spec field misspelt (and a new index, so
// that a run which went ahead would show) is a vet error at the user's
// file:line:col; plan and apply refuse it the same way and touch nothing.
func webTypo(t *testing.T, l *lab.Lab) {
	dir := webConfig(t, l, `stacks: web: index: "changed\n"`)
	path := filepath.Join(dir, "web.cue")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const field = `path: docroot, owner: account.name, group: account.name, mode: "0755"`
	src := string(b)
	at := strings.Index(src, field)
	if at < 0 {
		t.Fatalf("web.cue has no %q to misspell", field)
	}
	src = strings.Replace(src, field, strings.Replace(field, "mode:", "mdoe:", 1), 1)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	col := at + strings.Index(field, "mode:") - strings.LastIndex(src[:at], "\n")
	line := strings.Count(src[:at], "\n") + 1
	want := fmt.Sprintf(`%s:%d:%d: stacks.web.nodes[0].resources[3].spec.mdoe: unknown field "mdoe" (did you mean "mode"?)`, path, line, col)

	for _, args := range [][]string{{"vet"}, {"plan"}, {"apply", "-auto-approve"}} {
		code, out := runHastack(t, l.Dir, dir, nil, args...)
		if code != 1 {
			t.Errorf("hastack %s on the typo exited %d, want 1", args[0], code)
		}
		if !strings.Contains(out, want+"\n") {
			t.Errorf("hastack %s does not report the typo at its line; want\n%s", args[0], want)
		}
	}
	for _, n := range l.Nodes {
		got, err := l.Exec(t.Context(), n.Name, "cat", "/srv/www/index.html")
		if err != nil || string(got) != webIndex {
			t.Errorf("%s: the index is %q (%v) after the refused runs", n.Name, got, err)
		}
	}
}

// webAnswer asks ip's nginx from the controller until it answers want
// (the status, or the status and the body) or 10 s pass, and returns the
// last answer: a reload is a signal, the old workers finish their
// connections while the new ones start.
func webAnswer(t *testing.T, l *lab.Lab, ip, want string) string {
	t.Helper()
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out, _ := l.ExecController(t.Context(), "curl", "-sS", "--max-time", "2", "-o", "/dev/stdout", "-w", "%{http_code}", "http://"+ip+"/")
		// The body first, the status last: make it "status body".
		body := string(out)
		if len(body) >= 3 {
			got = body[len(body)-3:]
			if rest := body[:len(body)-3]; strings.Contains(want, " ") {
				got += " " + rest
			}
		}
		if got == want {
			break
		}
	}
	return got
}

// webConfig copies examples/web/web.cue into a temp dir with an inventory
// of the lab's nodes (the controller as the stack's client), and extra CUE.
func webConfig(t *testing.T, l *lab.Lab, extra string) string {
	t.Helper()
	b, err := os.ReadFile("../examples/web/web.cue")
	if err != nil {
		t.Fatal(err)
	}
	var inv strings.Builder
	inv.WriteString("package web\n\nstacks: web: {\n\thosts: [\n")
	for _, n := range l.Nodes {
		fmt.Fprintf(&inv, "\t\t{name: %q, ip: %q},\n", n.Name, n.IP)
	}
	fmt.Fprintf(&inv, "\t]\n\tclients: [%q]\n\tserver_name: \"www.example.com\"\n}\n%s\n", l.ControllerIP, extra)
	dir := t.TempDir()
	for name, text := range map[string]string{"web.cue": string(b), "hosts.cue": inv.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// webDriftPlan is the whole plan after the hand edit on node2: that file's
// diff and the reload it triggers, nothing on node1 or node3.
func webDriftPlan(l *lab.Lab) string {
	n2, _ := l.Node("node2")
	return strings.ReplaceAll(webDriftText, "$NODE2_IP", n2.IP)
}

const webDriftText = "Cluster web\n\n" +
	"node node2 ($NODE2_IP:22)\n" +
	"  ~ update " + webSite + ": content   [phase 3: content and site]\n" +
	"      --- " + webSite + "\n" +
	"      +++ " + webSite + "\n" +
	"      @@ -5,6 +5,6 @@\n" +
	"       \troot /srv/www;\n" +
	"       \tindex index.html;\n" +
	"       \tlocation / {\n" +
	"      -" + webDrift + "\n" +
	"      +" + webTryFiles + "\n" +
	"       \t}\n" +
	"       }\n" +
	"  * systemctl reload nginx (file:" + webSite + " changed)   [phase 4: nginx]\n" +
	"\n" +
	"Plan: 3 nodes, 0 to create, 1 to change, 0 to delete, 0 commands to run, 1 service actions.\n"
