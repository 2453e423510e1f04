package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"

	"hastack.dev/hastack/internal/termsafe"
)

// Problem is one reason a config is invalid. File, Line and Col point at the
// user's file when CUE knows a position there; File is empty otherwise.
type Problem struct {
	File      string
	Line, Col int
	Path      string // e.g. clusters.transfer.nodes[1].ip
	Msg       string
}

// String is p as vet prints it: file:line:col: path: message. Control
// characters a value may carry (ESC, CR) are shown escaped, never sent to
// the terminal.
func (p Problem) String() string {
	s := p.Msg
	if p.Path != "" {
		s = p.Path + ": " + s
	}
	switch {
	case p.File != "" && p.Line > 0:
		s = fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, s)
	case p.File != "": // a problem with a whole file
		s = p.File + ": " + s
	}
	return termsafe.String(s)
}

// GitHub formats p as a GitHub Actions annotation (a workflow command): the
// message is escaped as the runner decodes it (%25, %0D, %0A), the file
// name as a property (also %3A and %2C), after control characters are
// made visible: no value can end the command or start another.
func (p Problem) GitHub() string {
	msg := p.Msg
	if p.Path != "" {
		msg = p.Path + ": " + msg
	}
	msg = ghData.Replace(termsafe.String(msg))
	switch {
	case p.File == "":
		return "::error::" + msg
	case p.Line == 0:
		return fmt.Sprintf("::error file=%s::%s", ghProperty.Replace(termsafe.String(p.File)), msg)
	}
	return fmt.Sprintf("::error file=%s,line=%d,col=%d::%s", ghProperty.Replace(termsafe.String(p.File)), p.Line, p.Col, msg)
}

// The escapes of GitHub's workflow commands (toolkit's command.ts).
var (
	ghData     = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	ghProperty = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
)

// Problems is a sorted list: problems with a position first, by file, line
// and column; then the others by path.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (ps Problems) sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if (a.File == "") != (b.File == "") {
			return a.File != ""
		}
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Msg < b.Msg
	})
}

// dedupe drops repeated problems; ps must be sorted.
func (ps Problems) dedupe() Problems {
	out := ps[:0]
	for i, p := range ps {
		if i > 0 && p == ps[i-1] {
			continue
		}
		out = append(out, p)
	}
	return out
}

// placer turns CUE positions into user-facing file names.
type placer struct {
	dir string // absolute folder being loaded
	cwd string // absolute working directory, to shorten file names
}

// isUser reports whether pos is in the user's own files, not in the
// embedded packages overlaid under cue.mod/.
func (pl placer) isUser(pos token.Pos) bool {
	f := pos.Filename()
	if f == "" || !pos.IsValid() {
		return false
	}
	rel, err := filepath.Rel(pl.dir, f)
	if err != nil || strings.HasPrefix(rel, "..") {
		return false
	}
	return rel != "cue.mod" && !strings.HasPrefix(rel, "cue.mod"+string(filepath.Separator))
}

func (pl placer) set(p *Problem, pos token.Pos) {
	f := pos.Filename()
	if rel, err := filepath.Rel(pl.cwd, f); err == nil && !strings.HasPrefix(rel, "..") {
		f = rel
	}
	p.File, p.Line, p.Col = f, pos.Line(), pos.Column()
}

// firstUser returns the first of ps in the user's files.
func (pl placer) firstUser(ps []token.Pos) (token.Pos, bool) {
	for _, p := range ps {
		if pl.isUser(p) {
			return p, true
		}
	}
	return token.NoPos, false
}

// valuePositions lists where v was written: its own position and those of
// every conjunct that made it.
func valuePositions(v cue.Value) []token.Pos {
	ps := []token.Pos{v.Pos()}
	op, args := v.Expr()
	if op == cue.AndOp {
		for _, a := range args {
			ps = append(ps, valuePositions(a)...)
		}
	}
	return ps
}

// locate finds a user position for path under root, walking up to the
// nearest ancestor the user wrote when the value itself is a default.
func (pl placer) locate(root cue.Value, path cue.Path) (token.Pos, bool) {
	sels := path.Selectors()
	for n := len(sels); n >= 0; n-- {
		v := root.LookupPath(cue.MakePath(sels[:n]...))
		if !v.Exists() {
			continue
		}
		if pos, ok := pl.firstUser(valuePositions(v)); ok {
			return pos, true
		}
	}
	return token.NoPos, false
}

// fromCUE converts a CUE error into problems, one per error it holds.
func (pl placer) fromCUE(err error, root cue.Value) Problems {
	var out Problems
	for _, e := range errors.Errors(err) {
		format, args := e.Msg()
		p := Problem{Path: pathString(e.Path()), Msg: fmt.Sprintf(format, args...)}
		if t, ok := strings.CutPrefix(p.Msg, "incomplete value "); ok {
			p.Msg = "not set: this field needs a value (" + t + ")"
		}
		path := cue.ParsePath(p.Path)
		hasPath := root.Exists() && len(e.Path()) > 0 && path.Err() == nil
		// Where the user wrote the value beats the error's own positions,
		// which start with the reference to the schema (hsts.#Cluster).
		if pos, ok := pl.firstUser(valuePositions(root.LookupPath(path))); hasPath && ok {
			pl.set(&p, pos)
		} else if pos, ok := pl.firstUser(errors.Positions(e)); ok {
			pl.set(&p, pos)
		} else if hasPath {
			if pos, ok := pl.locate(root, path); ok {
				pl.set(&p, pos)
			}
		}
		out = append(out, p)
	}
	return quietDisjunctions(out)
}

// quietDisjunctions shortens what CUE says about a value that matches no
// branch of a disjunction: a field with a default (*31415 | int) given a
// string yields a header plus one error per branch. Only the last branch
// (the type, e.g. int) is kept: it says what the field accepts.
func quietDisjunctions(ps Problems) Problems {
	headers := map[string]bool{}
	last := map[string]int{}
	for i, p := range ps {
		if strings.Contains(p.Msg, "errors in empty disjunction") {
			headers[p.Path] = true
			continue
		}
		last[p.Path] = i
	}
	var out Problems
	for i, p := range ps {
		if headers[p.Path] && last[p.Path] != i {
			continue
		}
		out = append(out, p)
	}
	return out
}

// pathString writes CUE's path elements the way CUE source spells them:
// clusters.transfer.nodes[0].ip.
func pathString(elems []string) string {
	var b strings.Builder
	for _, e := range elems {
		if e != "" && strings.Trim(e, "0123456789") == "" {
			b.WriteString("[" + e + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		if !identRE.MatchString(e) && !strings.HasPrefix(e, `"`) {
			e = strconv.Quote(e)
		}
		b.WriteString(e)
	}
	return b.String()
}

var identRE = regexp.MustCompile(`^[#_]*[A-Za-z_$][A-Za-z0-9_$]*$`)
