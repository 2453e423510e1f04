package modules

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// commandSpec is a command with a guard, so the plan knows whether it runs.
// With no guard it always runs and the plan says its effect is unknown.
type commandSpec struct {
	Cmd     string `json:"cmd"`
	Stdin   string `json:"stdin,omitempty"`   // may hold secret.Placeholder
	Creates string `json:"creates,omitempty"` // skip when this path exists
	Removes string `json:"removes,omitempty"` // skip when this path is missing
	Unless  string `json:"unless,omitempty"`  // skip when this read-only check exits 0
	Onlyif  string `json:"onlyif,omitempty"`  // run only when this read-only check exits 0
	// UnlessSame skips when these two files exist with the same content:
	// `unless: cmp -s A B`, read with the node's shared facts instead of a
	// process of its own.
	UnlessSame []string `json:"unlessSame,omitempty"`
	// Stamp records a keyed hash of the command and its input on the node
	// after a successful run; the command runs again only when they change.
	// For commands whose result cannot be read back (askmscli). See stamp.go.
	Stamp bool `json:"stamp,omitempty"`
	// Display is what the plan shows instead of Cmd and Stdin (for a
	// script on stdin).
	Display string `json:"display,omitempty"`
	// Prelude names a registered prelude (RegisterPrelude) to put before
	// Stdin: a product's client functions for a script that talks to its
	// servers with the password (Cmd is then "sh -s").
	Prelude string `json:"prelude,omitempty"`
}

type commandModule struct{}

func init() { register("command", commandModule{}) }

// StampDir holds the stamps of commands on each node.
const StampDir = "/var/lib/hastack/stamps"

func stampName(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:8])
}

func stampPath(id string) string { return StampDir + "/" + stampName(id) }

// Probe runs the guards, each in a subshell of the node's one fact script:
// an `exit`, `cd`, `set -e` or variable of a guard ends or changes only
// that guard, not the facts read after it. The subshell costs little: sh
// execs a guard's last command in the subshell's own process, so a guard
// that runs a program forks once as it did in braces, and one made of
// builtins alone forks once more (0.25 ms in dash). The guard stands on
// lines of its own, so a trailing comment cannot swallow the closing
// parenthesis. Guards must be read-only.
func (commandModule) Probe(r *Resource) (Probe, error) {
	var s commandSpec
	if err := decodeSpec(r, &s); err != nil {
		return Probe{}, err
	}
	var b strings.Builder
	if s.Creates != "" {
		fmt.Fprintf(&b, "[ -e %s ] && echo creates 1 || echo creates 0\n", Quote(s.Creates))
	}
	if s.Removes != "" {
		fmt.Fprintf(&b, "[ -e %s ] && echo removes 1 || echo removes 0\n", Quote(s.Removes))
	}
	for _, g := range []struct{ name, cmd string }{{"unless", s.Unless}, {"onlyif", s.Onlyif}} {
		switch g.cmd {
		case "":
		case "true", "false":
			fmt.Fprintf(&b, "%s; echo %s $?\n", g.cmd, g.name)
		default:
			fmt.Fprintf(&b, "(\n%s\n) >/dev/null 2>&1 </dev/null; echo %s $?\n", g.cmd, g.name)
		}
	}
	if len(s.UnlessSame) != 0 && len(s.UnlessSame) != 2 {
		return Probe{}, fmt.Errorf("%s: unlessSame names two files, not %d", r.ID, len(s.UnlessSame))
	}
	p := Probe{Script: b.String(), Needs: Needs{Files: s.UnlessSame}}
	if s.Prelude != "" {
		if _, ok := preludeTexts[s.Prelude]; !ok {
			return Probe{}, fmt.Errorf("%s: unknown prelude %q", r.ID, s.Prelude)
		}
		// Its guards may use the prelude's functions and variables too.
		p.Preludes = []string{s.Prelude}
	}
	return p, nil
}

func (commandModule) Diff(r *Resource, fact *Fact, env *Env) (*Change, error) {
	var s commandSpec
	if err := decodeSpec(r, &s); err != nil {
		return nil, err
	}
	f, err := parseFact(fact.Out)
	if err != nil {
		return nil, err
	}
	guarded := false
	skip := false
	if s.Creates != "" {
		guarded = true
		skip = skip || f.kv["creates"] == "1"
	}
	if s.Removes != "" {
		guarded = true
		skip = skip || f.kv["removes"] == "0"
	}
	if s.Unless != "" {
		guarded = true
		skip = skip || f.kv["unless"] == "0"
	}
	if s.Onlyif != "" {
		guarded = true
		skip = skip || f.kv["onlyif"] != "0"
	}
	if len(s.UnlessSame) == 2 {
		guarded = true
		a, b := fact.Node.Files[s.UnlessSame[0]], fact.Node.Files[s.UnlessSame[1]]
		skip = skip || (a != nil && b != nil && bytes.Equal(a.Data, b.Data))
	}
	var stamp string
	var key *stampKey
	if s.Stamp {
		guarded = true
		key = fact.Node.stampKeyOf()
		stamp = stampOf(s, key, env.Secret)
		skip = skip || fact.Node.Stamps[stampName(r.ID)] == stamp
	}
	if len(env.Triggered) > 0 {
		skip = false
	}
	if skip {
		return nil, nil
	}
	shown := secret.Mask(s.Cmd)
	if s.Stdin != "" {
		shown += "  (stdin: " + secret.Mask(s.Stdin) + ")"
	}
	summary := "run " + secret.Mask(s.Cmd)
	if s.Display != "" {
		shown, summary = s.Display, "run "+s.Display
	}
	c := &Change{Action: Run, Summary: summary, Commands: []string{shown}, Unpredictable: !guarded}
	if len(env.Triggered) > 0 {
		c.Reason = strings.Join(env.Triggered, ", ") + " changed"
	}
	var stdin []byte
	if s.Prelude != "" {
		s.Stdin = Prelude(s.Prelude) + s.Stdin // Probe refused an unknown one
	}
	if s.Stdin != "" {
		stdin = secret.Fill([]byte(s.Stdin), env.Secret)
	}
	sec := env.Secret
	steps := []string{s.Cmd}
	if stamp != "" {
		// The stamps' directory is made by the command's own exec.
		steps = append(steps, stampDirs)
	}
	c.apply = func(ctx context.Context, h host.Host) error {
		if err := runSteps(ctx, h, steps, stdin, sec); err != nil {
			return err
		}
		if stamp == "" {
			return nil
		}
		return writeStamp(ctx, h, key, r.ID, stamp)
	}
	return c, nil
}
