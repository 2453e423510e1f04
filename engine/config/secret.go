package config

import (
	"errors"
	"os"
	"strings"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/internal/secret"
)

// secretMsg replaces every problem at or under `secret`: CUE quotes values
// in its messages, and this value may be a password written by mistake.
const secretMsg = `secret must be {env: "NAME"} or {file: "PATH"}: the password itself is never written in CUE`

// secretProblems checks the shape of cluster.secret. When the user wrote a
// plain string there, it is returned as lit so that it can be scrubbed from
// every other message.
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
		if root, ok := secretRoot(ps[i].Path); ok {
			ps[i].Path, ps[i].Msg = root, secretMsg
		}
		for _, l := range lits {
			if l != "" {
				ps[i].Msg = strings.ReplaceAll(ps[i].Msg, l, secret.Shown)
			}
		}
	}
	return ps
}

// secretRoot returns clusters.<name>.secret when path is that or below it.
func secretRoot(path string) (string, bool) {
	sels := cue.ParsePath(path).Selectors()
	if len(sels) >= 3 && (sels[0].String() == "clusters" || sels[0].String() == "stacks") && (sels[2].String() == "secret" || sels[2].String() == "previousSecret") {
		return cue.MakePath(sels[:3]...).String(), true
	}
	return "", false
}

// onePerSecret keeps the first secret problem of each cluster; ps is sorted.
func onePerSecret(ps Problems) Problems {
	seen := map[string]bool{}
	out := ps[:0]
	for _, p := range ps {
		if p.Msg == secretMsg {
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
		ps = append(ps, c.sourceProblems(cl, "secret", cl.Secret)...)
		if cl.PreviousSecret != nil {
			ps = append(ps, c.sourceProblems(cl, "previousSecret", *cl.PreviousSecret)...)
		}
	}
	return ps
}

// sourceProblems checks the password src names, when it is present.
func (c *Config) sourceProblems(cl *Cluster, field string, src secret.Source) Problems {
	at := field + ".env"
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
		at = field + ".file"
	default:
		return nil
	}
	if _, err := src.Resolve(); err != nil {
		p := Problem{Path: cl.Path() + "." + field, Msg: err.Error()}
		if pos, ok := c.pl.locate(cl.Value, cue.ParsePath(at)); ok {
			c.pl.set(&p, pos)
		}
		return Problems{p}
	}
	return nil
}

func quoteLabel(s string) string {
	return cue.MakePath(cue.Str(s)).String()
}
