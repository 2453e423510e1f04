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

// metaProbe prints the file's mode and owner, and the ids of the wanted
// owner and group, so Apply can chown over SFTP by number. The ids are
// looked up once per node and script (most files share an owner).
func metaProbe(p, owner, group string) string {
	u, g := shellVar("_uid_", owner), shellVar("_gid_", group)
	return fmt.Sprintf(`if [ -e %[1]s ]; then stat -c 'stat %%a %%U %%G' %[1]s; fi
[ -n "${%[4]s+x}" ] || %[4]s=$(id -u %[2]s 2>/dev/null || echo -)
[ -n "${%[5]s+x}" ] || %[5]s=$(getent group %[3]s 2>/dev/null | cut -d: -f3)
echo "uid $%[4]s"
echo "gid $%[5]s"
`, Quote(p), Quote(owner), Quote(group), u, g)
}

// shellVar makes a shell variable name from prefix and a user or group name.
func shellVar(prefix, name string) string {
	b := []byte(prefix)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b = append(b, c)
		} else {
			b = append(b, fmt.Sprintf("_%02x", c)...)
		}
	}
	return string(b)
}

func (fileModule) Probe(r *Resource) (string, error) {
	var s fileSpec
	if err := decodeSpec(r, &s); err != nil {
		return "", err
	}
	return metaProbe(s.Path, s.Owner, s.Group) + catProbe(s.Path), nil
}

func (fileModule) Diff(r *Resource, b []byte, env *Env) (*Change, error) {
	var s fileSpec
	if err := decodeSpec(r, &s); err != nil {
		return nil, err
	}
	f, err := parseFact(b)
	if err != nil {
		return nil, err
	}
	want := secret.Fill([]byte(s.Content), env.Secret)
	return fileChange(s.Path, s.Owner, s.Group, s.Mode, f, string(want), env.Secret)
}

// fileChange compares an observed file with wanted content and metadata and
// returns the change that writes it. Shared by file and conf.
func fileChange(p, owner, group, mode string, f fact, want string, sec secret.Secret) (*Change, error) {
	perm, err := strconv.ParseUint(mode, 8, 32)
	if err != nil {
		return nil, fmt.Errorf("%s: bad mode %q", p, mode)
	}
	uid, err1 := strconv.Atoi(f.kv["uid"])
	gid, err2 := strconv.Atoi(f.kv["gid"])
	if err1 != nil {
		return nil, fmt.Errorf("%s: owner %q does not exist on the node", p, owner)
	}
	if err2 != nil {
		return nil, fmt.Errorf("%s: group %q does not exist on the node", p, group)
	}
	c := &Change{}
	var notes []string
	if !f.has {
		c.Action = Create
		c.Summary = fmt.Sprintf("create %s (%s:%s %s)", p, owner, group, mode)
		c.Diff = mask(UnifiedDiff(p, "", want), sec)
	} else {
		st := strings.Fields(f.kv["stat"])
		if d := UnifiedDiff(p, string(f.data), want); d != "" {
			c.Diff = mask(d, sec)
			notes = append(notes, "content")
		}
		if len(st) == 3 {
			if m, _ := strconv.ParseUint(st[0], 8, 32); m != perm {
				notes = append(notes, fmt.Sprintf("mode %04o → %s", m, mode))
			}
			if st[1] != owner || st[2] != group {
				notes = append(notes, fmt.Sprintf("owner %s:%s → %s:%s", st[1], st[2], owner, group))
			}
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
	for _, v := range []secret.Secret{sec, sec.Previous()} {
		if !v.IsZero() {
			s = strings.ReplaceAll(s, v.Value(), secret.Shown)
		}
	}
	return s
}
