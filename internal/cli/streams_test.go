package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// hostilePlan is a plan as a node with hostile files gives it: the diff
// of a config file whose old line holds ESC sequences and a CR, which
// would clear the screen and let "+forged" overwrite the line on a
// terminal.
func hostilePlan() *engine.Plan {
	return &engine.Plan{
		Cluster: "prod", Summary: " (design sentinel): primary n1 (named by 3 Sentinels)",
		Live:   json.RawMessage(`{"design":"sentinel","primary":{"node":"n1","source":"sentinels","answers":3}}`),
		Phases: []engine.Phase{{Name: "config"}},
		Nodes: []engine.NodePlan{{Name: "n1", Address: "10.0.0.1", Changes: []*engine.ResourceChange{{
			ID: "conf:/opt/aspera/etc/redis/aspera_31415.conf", Kind: "conf",
			Change: &modules.Change{
				Action:  modules.Update,
				Summary: "update /opt/aspera/etc/redis/aspera_31415.conf",
				Diff:    " port 31415\n-bind 0.0.0.0\x1b[2J\x1b[H\r+forged \u202eevil\n+bind 10.0.0.1\n",
			},
		}}}},
	}
}

// What a node sends reaches the terminal escaped once the streams are set
// up for a cluster (redact): a plan's diff of a node file holding ESC and
// CR, and an apply error holding a command's stderr with ESC and BEL. The
// password is still hidden, and newlines and tabs stay as they are.
func TestNodeTextIsEscapedOnTheStreams(t *testing.T) {
	const pw = "Pw-Streams-1\x1b1"
	var stdout, stderr bytes.Buffer
	env := &Env{Stdout: &stdout, Stderr: &stderr}
	redact(env, secret.New(pw))

	engine.WriteText(env.Stdout, []*engine.Plan{hostilePlan()})
	// As apply reports a failed step (apply.go).
	stepErr := errors.New("exit 1: asconfigurator: \x1b]0;owned\x07\x1b[31merror\x1b[0m\tpw " + pw)
	fmt.Fprintf(env.Stdout, "%s: %s %s: %s (%.2fs)\n", "n1", "~", "asconf:/opt/aspera/etc/aspera.conf", "FAILED: "+stepErr.Error(), 0.25)
	fmt.Fprintf(env.Stderr, "  %s: failed: %v\n", "n1", stepErr)
	flush(env)

	for name, out := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String()} {
		if strings.ContainsAny(out, "\x1b\r\x07\u202e") {
			t.Errorf("%s holds raw control characters:\n%q", name, out)
		}
		if strings.Contains(out, "Pw-Streams") {
			t.Errorf("%s shows the password:\n%q", name, out)
		}
		if !strings.Contains(out, `\x1b]0;owned\x07\x1b[31merror\x1b[0m`+"\tpw "+secret.Shown) {
			t.Errorf("%s: the step's error is not shown escaped:\n%s", name, out)
		}
	}
	if !strings.Contains(stdout.String(), "      -bind 0.0.0.0\\x1b[2J\\x1b[H\\r+forged \\u202eevil\n      +bind 10.0.0.1\n") {
		t.Errorf("the diff is not shown escaped, line by line:\n%s", stdout.String())
	}
}

// plan -json through the same streams stays JSON and means the same.
func TestNodeTextInJSONStaysJSON(t *testing.T) {
	var stdout bytes.Buffer
	env := &Env{Stdout: &stdout, Stderr: &bytes.Buffer{}}
	redact(env, secret.New("Pw-Streams-2"))
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	p := hostilePlan()
	p.Nodes[0].Changes[0].Diff += "-x\x7f\u009b\u2066\n"
	if err := enc.Encode(p); err != nil {
		t.Fatal(err)
	}
	flush(env)
	if strings.ContainsAny(stdout.String(), "\x7f\u009b\u2066\u202e") {
		t.Errorf("raw control characters in the JSON:\n%q", stdout.String())
	}
	var back engine.Plan
	if err := json.Unmarshal(stdout.Bytes(), &back); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout.String())
	}
	if got := back.Nodes[0].Changes[0].Diff; got != p.Nodes[0].Changes[0].Diff {
		t.Errorf("the diff decodes as %q, want %q", got, p.Nodes[0].Changes[0].Diff)
	}
}

// A rune split across two writes comes out whole; half a rune left at the
// end is shown escaped once the streams are flushed.
func TestStreamsKeepSplitRunes(t *testing.T) {
	var stdout bytes.Buffer
	env := &Env{Stdout: &stdout, Stderr: &bytes.Buffer{}}
	redact(env, secret.New("Pw-Streams-3"))
	euro := "€" // 3 bytes
	fmt.Fprint(env.Stdout, "price: "+euro[:1])
	fmt.Fprint(env.Stdout, euro[1:]+"\n")
	fmt.Fprint(env.Stdout, "cut: "+euro[:2])
	flush(env)
	if got, want := stdout.String(), "price: €\ncut: \\xe2\\x82"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
