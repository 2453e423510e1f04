package config

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/internal/secret"
)

// secretMsg replaces every problem at or under `secret`: CUE quotes values
// in its messages, and this value may be a password written by mistake.
const secretMsg = `secret must be {env: "NAME"} or {file: "PATH"}: the password itself is never written in CUE`

// namedSourceMsg is secretMsg for a named secret.
const namedSourceMsg = `secret must be {env: "NAME"} or {file: "PATH"}: the secret itself is never written in CUE`

// namedMsg is the message of a secrets field that is not a map of names.
const namedMsg = `secrets must map names to {env: "NAME"} or {file: "PATH"}: the secret itself is never written in CUE`

// secretProblems checks the shape of cluster.secret, previousSecret and
// each secrets.NAME. When the user wrote a plain string there, it is
// returned as lit so that it can be scrubbed from every other message.
// secretFields are the fields that name a password source: the password,
// and during a rotation the one it replaces.
var secretFields = []string{"secret", "previousSecret"}

func (pl placer) secretProblems(cluster cue.Value) (ps Problems, lits []string) {
	for _, f := range secretFields {
		v := cluster.LookupPath(cue.ParsePath(f))
		if !v.Exists() { // hsts.#Cluster's secret has a default; a stack may have none
			continue
		}
		if s, err := v.String(); err == nil {
			lits = append(lits, s)
		}
		if _, err := sourceOf(v); err == nil {
			continue
		}
		p := Problem{Path: v.Path().String(), Msg: secretMsg}
		if pos, ok := pl.locate(cluster, cue.ParsePath(f)); ok {
			pl.set(&p, pos)
		}
		ps = append(ps, p)
	}
	nv := cluster.LookupPath(cue.ParsePath("secrets"))
	if !nv.Exists() {
		return ps, lits
	}
	it, err := nv.Fields()
	if err != nil {
		p := Problem{Path: nv.Path().String(), Msg: namedMsg}
		if pos, ok := pl.locate(cluster, cue.ParsePath("secrets")); ok {
			pl.set(&p, pos)
		}
		return append(ps, p), lits
	}
	for it.Next() {
		name := it.Selector().Unquoted()
		if s, err := it.Value().String(); err == nil {
			lits = append(lits, s)
		}
		at := cue.MakePath(cue.Str("secrets"), cue.Str(name))
		msg := ""
		if !secret.ValidName(name) {
			msg = "secret name " + strconv.Quote(name) + ": use a letter, then letters, digits, '_' or '-' (at most 64)"
		} else if _, err := sourceOf(it.Value()); err != nil {
			msg = namedSourceMsg
		}
		if msg != "" {
			p := Problem{Path: it.Value().Path().String(), Msg: msg}
			if pos, ok := pl.locate(cluster, at); ok {
				pl.set(&p, pos)
			}
			ps = append(ps, p)
		}
	}
	return ps, lits
}

// sourceOf decodes a secret value that is exactly {env: NAME} or
// {file: PATH} with a non-empty string. Its errors never quote v.
func sourceOf(v cue.Value) (secret.Source, error) {
	bad := errors.New(secretMsg)
	v, _ = v.Default() // the schema's default source when unset
	if v.Err() != nil || v.Kind() != cue.StructKind {
		return secret.Source{}, bad
	}
	var src secret.Source
	n := 0
	it, err := v.Fields(cue.Optional(true), cue.Definitions(true), cue.Hidden(true))
	if err != nil {
		return secret.Source{}, bad
	}
	for it.Next() {
		n++
		s, err := it.Value().String()
		if err != nil || s == "" {
			return secret.Source{}, bad
		}
		switch it.Selector().String() {
		case "env":
			src.Env = s
		case "file":
			src.File = s
		default:
			return secret.Source{}, bad
		}
	}
	if n != 1 {
		return secret.Source{}, bad
	}
	return src, nil
}

// hideSecrets rewrites problems under a secret path to secretMsg and blanks
// any literal secret value out of every message.
// Problems below secret (secret.env) are moved up to secret itself, so that
// one wrong secret gives one line (see onePerSecret).
func hideSecrets(ps Problems, lits []string) Problems {
	for i := range ps {
		if root, ok := secretRoot(ps[i].Path); ok && !strings.HasPrefix(ps[i].Msg, "secret name ") {
			ps[i].Path, ps[i].Msg = root, secretMsg
			if strings.Contains(root, ".secrets.") {
				ps[i].Msg = namedSourceMsg
			}
		}
		for _, l := range lits {
			if l != "" {
				ps[i].Msg = strings.ReplaceAll(ps[i].Msg, l, secret.Shown)
			}
		}
	}
	return ps
}

// secretRoot returns clusters.<name>.secret (or secrets.NAME) when path
// is that or below it.
func secretRoot(path string) (string, bool) {
	sels := cue.ParsePath(path).Selectors()
	if len(sels) < 3 || !slices.Contains(Fields, sels[0].String()) {
		return "", false
	}
	switch sels[2].String() {
	case "secret", "previousSecret":
		return cue.MakePath(sels[:3]...).String(), true
	case "secrets":
		if len(sels) >= 4 {
			return cue.MakePath(sels[:4]...).String(), true
		}
	}
	return "", false
}

// onePerSecret keeps the first secret problem of each cluster; ps is sorted.
func onePerSecret(ps Problems) Problems {
	seen := map[string]bool{}
	out := ps[:0]
	for _, p := range ps {
		if p.Msg == secretMsg || p.Msg == namedSourceMsg {
			if seen[p.Path] {
				continue
			}
			seen[p.Path] = true
		}
		out = append(out, p)
	}
	return out
}

// SecretProblems checks, for each cluster, the password its secret names,
// when that environment variable is set or that file exists: vet needs no
// password, but reports a bad one early. Messages never hold the value;
// they point at the secret's source in the user's file.
func (c *Config) SecretProblems() Problems {
	var ps Problems
	for _, cl := range c.Clusters {
		password := func(s secret.Source) error { _, err := s.Resolve(); return err }
		ps = append(ps, c.sourceProblems(cl, cue.ParsePath("secret"), cl.Secret, password)...)
		if cl.PreviousSecret != nil {
			ps = append(ps, c.sourceProblems(cl, cue.ParsePath("previousSecret"), *cl.PreviousSecret, password)...)
		}
		for _, n := range sortedNames(cl.Secrets) {
			named := func(s secret.Source) error { _, err := s.ResolveNamed(n); return err }
			ps = append(ps, c.sourceProblems(cl, cue.MakePath(cue.Str("secrets"), cue.Str(n)), cl.Secrets[n], named)...)
		}
	}
	return ps
}

func sortedNames(m map[string]secret.Source) []string {
	var ns []string
	for n := range m {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

// sourceProblems checks the secret src names at field (secret,
// previousSecret, secrets.NAME), when it is present: read reads it as a
// password or as a named secret.
func (c *Config) sourceProblems(cl *Cluster, field cue.Path, src secret.Source, read func(secret.Source) error) Problems {
	leaf := "env"
	switch {
	case src.Env != "":
		if _, ok := os.LookupEnv(src.Env); !ok {
			return nil
		}
	case src.File != "":
		// Lstat: a symlink, even a dangling one, is reported, not skipped.
		if _, err := os.Lstat(src.File); err != nil {
			return nil
		}
		leaf = "file"
	default:
		return nil
	}
	if err := read(src); err != nil {
		p := Problem{Path: cl.Path() + "." + field.String(), Msg: err.Error()}
		at := cue.MakePath(append(field.Selectors(), cue.Str(leaf))...)
		if pos, ok := c.pl.locate(cl.Value, at); ok {
			c.pl.set(&p, pos)
		}
		return Problems{p}
	}
	return nil
}

func quoteLabel(s string) string {
	return cue.MakePath(cue.Str(s)).String()
}
