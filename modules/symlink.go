package modules

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// symlinkSpec is a symbolic link at Path pointing to Target. A link with
// another target is replaced; anything else at Path (a file, a FIFO) only
// with Force, a directory never.
type symlinkSpec struct {
	Path   string `json:"path"`
	Target string `json:"target"`
	Force  bool   `json:"force,omitempty"`
}

func decodeSymlink(r *Resource) (symlinkSpec, error) {
	var s symlinkSpec
	if err := decodeSpec(r, &s); err != nil {
		return s, err
	}
	if !strings.HasPrefix(s.Path, "/") || path.Clean(s.Path) != s.Path || s.Path == "/" {
		return s, fmt.Errorf("%s: path %q is not a clean absolute path", r.ID, s.Path)
	}
	if s.Target == "" {
		return s, fmt.Errorf("%s: target is empty", r.ID)
	}
	for _, p := range []string{s.Path, s.Target} {
		if strings.ContainsAny(p, "\n\x00") {
			return s, fmt.Errorf("%s: %q holds a newline or NUL", r.ID, p)
		}
	}
	return s, nil
}

type symlinkModule struct{}

func init() { register("symlink", symlinkModule{}) }

// Probe reads Path with the node's tar, which archives a link as a link.
func (symlinkModule) Probe(r *Resource) (Probe, error) {
	s, err := decodeSymlink(r)
	if err != nil {
		return Probe{}, err
	}
	return Probe{Needs: Needs{Files: []string{s.Path}}}, nil
}

func (symlinkModule) Diff(r *Resource, f *Fact, env *Env) (*Change, error) {
	s, err := decodeSymlink(r)
	if err != nil {
		return nil, err
	}
	nf := f.Node
	c := &Change{Action: Update}
	switch have, isLink := nf.Links[s.Path]; {
	case isLink && have == s.Target:
		return nil, nil
	case isLink:
		c.Summary = fmt.Sprintf("symlink %s → %s (now → %s)", s.Path, s.Target, have)
	case nf.Dirs[s.Path] != nil:
		return nil, fmt.Errorf("%s is a directory: hastack does not replace a directory with a symlink; remove it and run again", s.Path)
	case nf.Files[s.Path] != nil || nf.Irregular[s.Path] != "":
		what := "a regular file"
		if k := nf.Irregular[s.Path]; k != "" {
			what = k
		}
		if !s.Force {
			return nil, fmt.Errorf("%s is %s, not a symlink: set force to replace it", s.Path, what)
		}
		c.Summary = fmt.Sprintf("replace %s (%s) with a symlink → %s", s.Path, what, s.Target)
	default:
		c.Action, c.Summary = Create, fmt.Sprintf("symlink %s → %s", s.Path, s.Target)
	}
	dir := path.Dir(s.Path)
	c.Commands = []string{fmt.Sprintf("ln -s -- %s %s && mv -Tf -- %[2]s %[3]s", Quote(s.Target), Quote(path.Join(dir, ".hastack-link-RANDOM")), Quote(s.Path))}
	c.apply = func(ctx context.Context, h host.Host) error {
		_, err := run(ctx, h, "sh -s", []byte(symlinkScript(s, tempName(dir))), secret.Secret{})
		return err
	}
	return c, nil
}

// tempName is a fresh name in dir that nobody can have guessed.
func tempName(dir string) string {
	var b [8]byte
	rand.Read(b[:])
	return path.Join(dir, ".hastack-link-"+hex.EncodeToString(b[:]))
}

// symlinkScript makes the link under a temporary name and renames it over
// Path: rename replaces whatever is there (a link too) without following
// it, and is atomic, so Path is never missing. Only in a directory where
// nobody but root can swap names (hastack_safe_dir); without Force, it
// refuses what appeared at Path since the plan was made and is not a link.
func symlinkScript(s symlinkSpec, tmp string) string {
	p := Quote(s.Path)
	var b strings.Builder
	b.WriteString(SafeDirFunc)
	fmt.Fprintf(&b, "hastack_safe_dir %s || exit 1\n", Quote(path.Dir(s.Path)))
	fmt.Fprintf(&b, "if [ -d %[1]s ] && [ ! -L %[1]s ]; then echo %[2]s >&2; exit 1; fi\n", p, Quote(s.Path+" is a directory"))
	if !s.Force {
		fmt.Fprintf(&b, "if [ -e %[1]s ] && [ ! -L %[1]s ]; then echo %[2]s >&2; exit 1; fi\n", p, Quote(s.Path+" is not a symlink: set force to replace it"))
	}
	fmt.Fprintf(&b, "ln -s -- %[1]s %[2]s || exit 1\nmv -Tf -- %[2]s %[3]s || { rm -f -- %[2]s; exit 1; }\n", Quote(s.Target), Quote(tmp), p)
	return b.String()
}
