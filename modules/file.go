package modules

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// fileSpec is a whole file that hastack owns.
type fileSpec struct {
	Path    string `json:"path"`
	Content string `json:"content"` // may hold secret.Placeholder
	Owner   string `json:"owner"`
	Group   string `json:"group"`
	Mode    string `json:"mode"` // octal, e.g. "0640"
}

type fileModule struct{}

func init() { register("file", fileModule{}) }

func (fileModule) Probe(r *Resource) (Probe, error) {
	var s fileSpec
	if err := decodeSpec(r, &s); err != nil {
		return Probe{}, err
	}
	return Probe{Needs: Needs{Files: []string{s.Path}}}, nil
}

func (fileModule) Diff(r *Resource, f *Fact, env *Env) (*Change, error) {
	var s fileSpec
	if err := decodeSpec(r, &s); err != nil {
		return nil, err
	}
	want := secret.Fill([]byte(s.Content), env.Secret)
	return fileChange(s.Path, s.Owner, s.Group, s.Mode, f.Node, string(want), env.Secret)
}

// fileChange compares an observed file with wanted content and metadata and
// returns the change that writes it. Shared by file and conf.
func fileChange(p, owner, group, mode string, nf *NodeFacts, want string, sec secret.Secret) (*Change, error) {
	perm, err := strconv.ParseUint(mode, 8, 32)
	if err != nil {
		return nil, fmt.Errorf("%s: bad mode %q", p, mode)
	}
	uid, ok := nf.Users[owner]
	if !ok {
		return nil, fmt.Errorf("%s: owner %q does not exist on the node", p, owner)
	}
	gid, ok := nf.Groups[group]
	if !ok {
		return nil, fmt.Errorf("%s: group %q does not exist on the node", p, group)
	}
	c := &Change{}
	var notes []string
	have := nf.Files[p]
	if have == nil {
		c.Action = Create
		c.Summary = fmt.Sprintf("create %s (%s:%s %s)", p, owner, group, mode)
		c.Diff = maskDiff(UnifiedDiff(p, "", want), sec)
	} else {
		if d := UnifiedDiff(p, string(have.Data), want); d != "" {
			c.Diff = maskDiff(d, sec)
			notes = append(notes, "content")
		}
		if uint64(have.Mode) != perm {
			notes = append(notes, fmt.Sprintf("mode %04o → %s", have.Mode, mode))
		}
		if have.Owner != owner || have.Group != group {
			notes = append(notes, fmt.Sprintf("owner %s:%s → %s:%s", have.Owner, have.Group, owner, group))
		}
		if len(notes) == 0 {
			return nil, nil
		}
		c.Action = Update
		c.Summary = fmt.Sprintf("update %s: %s", p, strings.Join(notes, ", "))
		// Owner and mode take effect without a restart.
		c.Live = c.Diff == ""
	}
	file := host.File{Path: p, Data: []byte(want), Mode: fs.FileMode(perm), UID: uid, GID: gid}
	c.file = &file
	c.apply = func(ctx context.Context, h host.Host) error { return writeFile(ctx, h, file) }
	return c, nil
}

func writeFile(ctx context.Context, h host.Host, f host.File) error {
	if _, err := run(ctx, h, "mkdir -p "+Quote(path.Dir(f.Path)), nil, secret.Secret{}); err != nil {
		return err
	}
	return h.WriteFile(ctx, f)
}

// mask hides the secret in display text.
func mask(s string, sec secret.Secret) string {
	s = secret.Mask(s)
	vs := []secret.Secret{sec, sec.Previous()}
	if len(sec.Previous().Value()) > len(sec.Value()) {
		vs[0], vs[1] = vs[1], vs[0] // longest first
	}
	for _, v := range vs {
		if !v.IsZero() {
			s = strings.ReplaceAll(s, v.Value(), secret.Shown)
		}
	}
	return s
}

// maskDiff hides, beyond the cluster's passwords, the value of every line
// that carries one, whatever it is: a password found on the node (an old
// one, one set by hand) or a hash of one (Redis's "user ... #<sha256>").
func maskDiff(d string, sec secret.Secret) string {
	lines := strings.Split(mask(d, sec), "\n")
	for i, l := range lines {
		if len(l) < 2 || strings.HasPrefix(l, "---") || strings.HasPrefix(l, "+++") || strings.HasPrefix(l, "@@") {
			continue
		}
		if k, ok := sensitiveKey(l[1:]); ok {
			lines[i] = l[:1] + k + " " + secret.Shown
		}
	}
	return strings.Join(lines, "\n")
}

// sensitiveKey returns the part of a config line before its secret value.
func sensitiveKey(line string) (string, bool) {
	t := strings.Fields(line)
	switch {
	case len(t) >= 2 && (strings.EqualFold(t[0], "requirepass") || strings.EqualFold(t[0], "masterauth")):
		return t[0], true
	case len(t) >= 3 && strings.EqualFold(t[0], "user"):
		return t[0] + " " + t[1], true
	case len(t) >= 3 && strings.EqualFold(t[0], "sentinel") && (strings.EqualFold(t[1], "auth-pass") || strings.EqualFold(t[1], "sentinel-pass")):
		return strings.Join(t[:2], " "), true
	case len(t) >= 3 && t[0] == "tcp-check" && t[1] == "send" && strings.HasPrefix(t[2], "AUTH"):
		return "tcp-check send AUTH", true
	}
	return "", false
}
