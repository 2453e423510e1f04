package modules

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// confSpec is a "key value" config file in which hastack owns some
// directives and leaves every other line alone: some servers rewrite their
// own files at run time (replication sources, ids, epochs, known peers,
// monitored addresses), and a tool that
// templates the whole file reverts a failover. Owned directives are
// matched by their leading tokens.
type confSpec struct {
	Path       string      `json:"path"`
	Owner      string      `json:"owner"`
	Group      string      `json:"group"`
	Mode       string      `json:"mode"`
	Header     []string    `json:"header"` // comment lines of a new file
	Directives []directive `json:"directives"`
	// Live, when set, names how a changed directive is applied to the
	// running server without a restart: a LiveApplier a product module
	// registered (RegisterLive). LiveAddr is the server's "ip port".
	Live     string `json:"live,omitempty"`
	LiveAddr string `json:"liveAddr,omitempty"`
	// Partial says another resource creates the file: this one only edits
	// its directives in an existing file (a later phase's share of it).
	Partial bool `json:"partial,omitempty"`
}

type directive struct {
	Key     string `json:"key"`   // identity: the line's leading words, e.g. "save"
	Value   string `json:"value"` // wanted arguments
	Comment string `json:"comment,omitempty"`
	// Keep lists argument positions the server rewrites at run time: an
	// existing value there is kept. Runtime keeps all of them: the line is
	// only added when missing (replicaof).
	Keep    []int `json:"keep,omitempty"`
	Runtime bool  `json:"runtime,omitempty"`
	Absent  bool  `json:"absent,omitempty"` // the directive must not be there
	// Multi: the server writes one line per group of arguments (as CONFIG REWRITE
	// splits "save 900 1 60 10000" into two lines); compare them joined.
	Multi   bool   `json:"multi,omitempty"`
	LiveSet string `json:"liveSet,omitempty"` // command that sets it at run time, e.g. "CONFIG SET maxmemory"
	// LiveArg, with LiveSet, is the one argument position the live command
	// can change (a quorum among a monitor line's arguments); a change
	// elsewhere on the line needs a restart.
	LiveArg *int `json:"liveArg,omitempty"`
}

type confModule struct{}

// A LiveApplier applies a changed config line to a running server, the
// protocol a product module registers by name (conf's live field).
type LiveApplier interface {
	// Up says, from the node's facts, whether the server at addr runs: a
	// stopped one reads its file when it starts.
	Up(nf *NodeFacts, addr string) bool
	// Set sends one live command (it may carry a password: never on a
	// command line) to the server at addr.
	Set(ctx context.Context, h host.Host, addr, cmd string, sec secret.Secret) error
}

var liveAppliers = map[string]LiveApplier{}

// RegisterLive registers a live applier (from a product module's init).
func RegisterLive(name string, l LiveApplier) { liveAppliers[name] = l }

func init() { register("conf", confModule{}) }

func (confModule) Probe(r *Resource) (Probe, error) {
	var s confSpec
	if err := decodeSpec(r, &s); err != nil {
		return Probe{}, err
	}
	if _, ok := liveAppliers[s.Live]; s.Live != "" && !ok {
		return Probe{}, fmt.Errorf("%s: unknown live applier %q", r.ID, s.Live)
	}
	return Probe{Needs: Needs{Files: []string{s.Path}}}, nil
}

func (confModule) Diff(r *Resource, f *Fact, env *Env) (*Change, error) {
	var s confSpec
	if err := decodeSpec(r, &s); err != nil {
		return nil, err
	}
	if err := notRegular(f.Node, s.Path); err != nil {
		return nil, err
	}
	have := f.Node.Files[s.Path]
	for i := range s.Directives {
		s.Directives[i].Value = string(secret.Fill([]byte(s.Directives[i].Value), env.Secret))
	}
	var want string
	var live []string
	if have == nil && s.Partial {
		return nil, nil // the resource that creates the file writes these lines too
	}
	if have == nil {
		want = renderConf(s)
	} else {
		want, live = mergeConf(string(have.Data), s.Directives)
	}
	c, err := fileChange(s.Path, s.Owner, s.Group, s.Mode, f.Node, want, env)
	if c == nil || err != nil {
		return c, err
	}
	metaOnly := c.Live
	m := newMasker(want, env.Secret)
	// Live only when that server runs: a stopped one reads the file when
	// it starts, and CONFIG SET on it would fail every run.
	applier := liveAppliers[s.Live]
	serverUp := applier != nil && applier.Up(f.Node, s.LiveAddr)
	if c.Action == Update && serverUp && len(live) > 0 && !metaOnly {
		// Every changed line can be set at run time: do that, then write
		// the file, and tell watchers no restart is needed.
		for _, l := range live {
			c.Commands = append(c.Commands, m.text(l))
		}
		c.Summary += " (applied live, no restart)"
		c.Live = true
	} else {
		live = nil
	}
	file := *c.file
	ds := s.Directives
	sec := env.Secret
	c.apply = func(ctx context.Context, h host.Host) error {
		for _, l := range live {
			if err := applier.Set(ctx, h, s.LiveAddr, l, sec); err != nil {
				// The applier hides the passwords, not the stack's
				// secret-named values.
				return errors.New(m.text(err.Error()))
			}
		}
		if have == nil {
			return writeFile(ctx, h, file)
		}
		// The server may have rewritten the file since the facts were
		// read (a live set above may do): merge into what is there
		// now, so none of their lines is lost. The service user owns the
		// file and can swap it for a link at any time: read it without
		// following one.
		cur, err := readNoFollow(ctx, h, s.Path, sec)
		if err != nil {
			return err
		}
		merged, _ := mergeConf(string(cur), ds)
		if merged == string(cur) && !metaOnly && len(live) > 0 {
			return nil // the server already wrote it
		}
		file.Data = []byte(merged)
		return writeFile(ctx, h, file)
	}
	return c, nil
}

func renderConf(s confSpec) string {
	var b strings.Builder
	for _, h := range s.Header {
		b.WriteString(h + "\n")
	}
	for _, d := range s.Directives {
		if d.Absent {
			continue
		}
		if d.Comment != "" {
			b.WriteString("# " + d.Comment + "\n")
		}
		b.WriteString(strings.TrimSpace(d.Key+" "+d.Value) + "\n")
	}
	return b.String()
}

// mergeConf edits the owned directives of an existing file in place: a
// changed line is replaced where it stands, a missing one goes after the
// owned directive that precedes it in ds (so a file reads in the seed's
// order), or at the end; duplicates of an owned directive are dropped, all
// other lines are kept.
// It also returns, for each changed directive that has a LiveSet, the
// command that applies it at run time (nil when any change needs a restart).
func mergeConf(old string, ds []directive) (string, []string) {
	lines := splitLines(old)
	drop := map[int]bool{}
	var appendLines, live []string
	inserts := map[int][]string{} // after line i
	anchor := -1                  // line of the last owned directive seen
	restart := false
	for _, d := range ds {
		key := tokenize(d.Key)
		var idx []int
		for i, l := range lines {
			if !drop[i] && hasPrefixTokens(tokenize(l), key) {
				idx = append(idx, i)
			}
		}
		if d.Absent {
			for _, i := range idx {
				drop[i] = true
			}
			if len(idx) > 0 {
				restart = true
			}
			continue
		}
		if len(idx) == 0 {
			add := []string{strings.TrimSpace(d.Key + " " + d.Value)}
			if d.Comment != "" {
				add = append([]string{"# " + d.Comment}, add...)
			}
			if anchor >= 0 {
				inserts[anchor] = append(inserts[anchor], add...)
			} else {
				appendLines = append(appendLines, add...)
			}
			if d.LiveSet == "" {
				restart = true
			} else {
				live = append(live, liveCmd(d.LiveSet, d.Value))
			}
			continue
		}
		anchor = idx[0]
		have := tokenize(lines[idx[0]])[len(key):]
		if d.Multi {
			for _, i := range idx[1:] {
				have = append(have, tokenize(lines[i])[len(key):]...)
			}
			if equalTokens(have, tokenize(d.Value)) {
				continue
			}
		}
		for _, i := range idx[1:] {
			drop[i] = true
		}
		if d.Runtime {
			continue
		}
		want := tokenize(d.Value)
		for _, k := range d.Keep {
			if k < len(have) && k < len(want) {
				want[k] = have[k]
			}
		}
		if !equalTokens(have, want) {
			lines[idx[0]] = strings.TrimSpace(d.Key + " " + strings.Join(quoteTokens(want), " "))
			switch {
			case d.LiveSet == "":
				restart = true
			case d.LiveArg != nil:
				k := *d.LiveArg
				rest := func(t []string) []string {
					return append(append([]string{}, t[:min(k, len(t))]...), t[min(k+1, len(t)):]...)
				}
				if k >= len(want) || !equalTokens(rest(have), rest(want)) {
					restart = true
				} else {
					live = append(live, d.LiveSet+" "+quoteTokens(want[k : k+1])[0])
				}
			default:
				live = append(live, liveCmd(d.LiveSet, strings.Join(want, " ")))
			}
		}
	}
	var b strings.Builder
	for i, l := range lines {
		if !drop[i] {
			b.WriteString(l + "\n")
		}
		for _, a := range inserts[i] {
			b.WriteString(a + "\n")
		}
	}
	for _, l := range appendLines {
		b.WriteString(l + "\n")
	}
	if restart {
		live = nil
	}
	return b.String(), live
}

// tokenize splits a config line the usual way (sdssplitargs): spaces
// separate, "..." and '...' quote. A comment line gives no tokens.
func tokenize(line string) []string {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return nil
	}
	var toks []string
	var cur strings.Builder
	inTok := false
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' && i+1 < len(line) {
				i++
				cur.WriteByte(line[i])
			} else if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, inTok = c, true
		case c == ' ' || c == '\t':
			if inTok {
				toks = append(toks, cur.String())
				cur.Reset()
				inTok = false
			}
		default:
			cur.WriteByte(c)
			inTok = true
		}
	}
	if inTok {
		toks = append(toks, cur.String())
	}
	return toks
}

func hasPrefixTokens(toks, key []string) bool {
	if len(toks) < len(key) || len(key) == 0 {
		return false
	}
	for i, k := range key {
		if !strings.EqualFold(toks[i], k) {
			return false
		}
	}
	return true
}

func equalTokens(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func quoteTokens(ts []string) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		if t == "" || strings.ContainsAny(t, " \t\"'") {
			t = `"` + strings.ReplaceAll(t, `"`, `\"`) + `"`
		}
		out[i] = t
	}
	return out
}

// liveCmd puts the value into a LiveSet command: in place of "{}" (as in
// "ACL SETUSER default >{}"), else at the end.
func liveCmd(set, value string) string {
	if strings.Contains(set, "{}") {
		f := strings.Fields(set)
		for i, w := range f {
			if strings.Contains(w, "{}") {
				f[i] = Quote(strings.Replace(w, "{}", value, 1))
			}
		}
		return strings.Join(f, " ")
	}
	return set + " " + Quote(value)
}
