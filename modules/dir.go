package modules

import (
	"context"
	"fmt"
	"path"
	"strconv"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// dirSpec is a directory that must exist with an owner, a group and
// (optionally) a mode. Servers that rewrite their own config files do so
// through a temporary file in the same directory: if the service user
// cannot write there, the server cannot save what it learned at run time
// (the id it was given at its first start). A stack keeps such a directory
// root's, group-writable and sticky (see nodepaths.go).
type dirSpec struct {
	Path  string `json:"path"`
	Owner string `json:"owner"`
	Group string `json:"group"`
	Mode  string `json:"mode,omitempty"` // octal, e.g. "1775"; empty leaves the mode as it is
}

type dirModule struct{}

func init() { register("dir", dirModule{}) }

func (dirModule) Probe(r *Resource) (Probe, error) {
	var s dirSpec
	if err := decodeSpec(r, &s); err != nil {
		return Probe{}, err
	}
	return Probe{Needs: Needs{Dirs: []string{s.Path}}}, nil
}

func (dirModule) Diff(r *Resource, f *Fact, env *Env) (*Change, error) {
	var s dirSpec
	if err := decodeSpec(r, &s); err != nil {
		return nil, err
	}
	if kind, ok := f.Node.Irregular[s.Path]; ok {
		return nil, fmt.Errorf("%q is %s, not a directory: hastack follows no link as root; remove it and run again", s.Path, kind)
	}
	var mode uint64
	if s.Mode != "" {
		var err error
		if mode, err = strconv.ParseUint(s.Mode, 8, 32); err != nil || mode > 0o7777 {
			return nil, fmt.Errorf("%s: bad mode %q", s.Path, s.Mode)
		}
	}
	want := s.Owner + ":" + s.Group
	var have, haveMode string
	if d := f.Node.Dirs[s.Path]; d != nil {
		have = d.Owner + ":" + d.Group
		haveMode = fmt.Sprintf("%04o", unixMode(d.Mode))
	}
	wantMode := haveMode
	if s.Mode != "" {
		wantMode = fmt.Sprintf("%04o", mode)
	}
	if have == want && haveMode == wantMode {
		return nil, nil
	}
	shown := fmt.Sprintf("mkdir -p %[1]s && chown -h %[2]s %[1]s", Quote(s.Path), Quote(want))
	if s.Mode != "" {
		shown += fmt.Sprintf(" && chmod %s %s", wantMode, Quote(s.Path))
	}
	summary := fmt.Sprintf("directory %s owned by %s", s.Path, want)
	if s.Mode != "" {
		summary += ", mode " + wantMode
	}
	c := &Change{Action: Update, Summary: summary, Commands: []string{shown}, Live: true}
	if have == "" {
		c.Action = Create
	} else {
		c.Summary += " (now " + have + " " + haveMode + ")"
	}
	script := dirScript(s.Path, shown)
	c.apply = func(ctx context.Context, h host.Host) error {
		_, err := run(ctx, h, "sh -s", []byte(script), secret.Secret{})
		return err
	}
	return c, nil
}

// dirScript runs cmd (mkdir, chown -h, chmod of p) only if p's parent is
// safe (no one but root can swap p between the check and the chmod, which
// follows a link) and p is not a link.
func dirScript(p, cmd string) string {
	return SafeDirFunc + fmt.Sprintf("hastack_safe_dir %[1]s || exit 1\n"+
		"if [ -L %[2]s ]; then echo %[3]s >&2; exit 1; fi\n%[4]s\n",
		Quote(path.Dir(p)), Quote(p), Quote(p+" is a symlink: hastack follows no link as root"), cmd)
}
