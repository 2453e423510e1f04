package modules

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
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
	c, err := fileChange(s.Path, s.Owner, s.Group, s.Mode, f.Node, string(want), env)
	if c != nil && c.Diff != "" && env.Secret.MultiLine(s.Content) {
		// A private key: the node's old one is as secret as the new.
		c.Diff = ""
		c.Summary += " (secret content, no diff shown)"
	}
	return c, err
}

// fileChange compares an observed file with wanted content and metadata and
// returns the change that writes it. Shared by file and conf.
func fileChange(p, owner, group, mode string, nf *NodeFacts, want string, env *Env) (*Change, error) {
	sec := env.Secret
	perm, err := strconv.ParseUint(mode, 8, 32)
	if err != nil {
		return nil, fmt.Errorf("%s: bad mode %q", p, mode)
	}
	uid, ok := env.accountID(nf, "user", owner)
	if !ok {
		return nil, fmt.Errorf("%s: owner %q does not exist on the node, and no user resource of an earlier phase creates it", p, owner)
	}
	gid, ok := env.accountID(nf, "group", group)
	if !ok {
		return nil, fmt.Errorf("%s: group %q does not exist on the node, and no group resource of an earlier phase creates it", p, group)
	}
	c := &Change{}
	var notes []string
	have := nf.Files[p]
	if have == nil {
		c.Action = Create
		c.Summary = fmt.Sprintf("create %s (%s:%s %s)", p, owner, group, mode)
		c.Diff = maskDiff(UnifiedDiff(p, "", want), want, sec)
	} else {
		if d := UnifiedDiff(p, string(have.Data), want); d != "" {
			c.Diff = maskDiff(d, want, sec)
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

// writeFile writes f, making its directory first when it is missing. The
// write is tried first: its directory nearly always exists, and an exec
// for mkdir costs ten times an SFTP write. A write that fails for any
// reason gets the mkdir and one more try, so the outcome is the one of a
// mkdir -p before the write (a write is atomic and leaves nothing behind
// when it fails).
func writeFile(ctx context.Context, h host.Host, f host.File) error {
	if h.WriteFile(ctx, f) == nil {
		return nil
	}
	if _, err := run(ctx, h, "mkdir -p "+Quote(path.Dir(f.Path)), nil, secret.Secret{}); err != nil {
		return err
	}
	return h.WriteFile(ctx, f)
}

// Mask hides the secret in display text (for product modules).
func Mask(s string, sec secret.Secret) string { return mask(s, sec) }

// mask hides the secret in display text.
func mask(s string, sec secret.Secret) string {
	s = secret.Mask(s)
	for _, v := range sec.Values() { // longest first
		s = strings.ReplaceAll(s, v, secret.Shown)
	}
	return s
}

// A masker is the one way a change hides its secrets in everything it
// shows (its diff, its commands, the errors of its apply). It is built
// from the content the change writes:
//   - the cluster's passwords and their placeholders, wherever they are
//     (mask);
//   - on a config line, the rest of a line that starts as a line of want
//     holding a password starts: the node's version of a line hastack
//     writes a secret into holds a secret too (an old password, one set by
//     hand);
//   - on a config line, the value of a directive whose name says it is
//     secret (secretName: tls-key-file-pass, masterauth, auth-pass ...)
//     and of the lines a product module says hold a secret its name does
//     not say (RegisterSecretLine);
//   - in any text, the values the last two rules find in want: a secret
//     written in the stack under a secret name is hidden in a live command
//     (CONFIG SET tls-key-file-pass ...) as in the diff. Hiding a short
//     such value where it stands for something else errs on the safe side.
type masker struct {
	sec      secret.Secret
	prefixes []string // secretPrefixes of want
	values   []string // the secret parts of want's lines, longest first
}

func newMasker(want string, sec secret.Secret) masker {
	m := masker{sec: sec, prefixes: secretPrefixes(want, sec)}
	for _, l := range strings.Split(want, "\n") {
		// The lines under prefixes hold a password, hidden already.
		body := strings.TrimSpace(l)
		k, ok := sensitiveKey(body)
		if !ok || strings.HasPrefix(body, "#") || strings.HasPrefix(body, "<!--") {
			continue
		}
		v := body[len(k):]
		if i := strings.LastIndex(v, "</"); strings.HasPrefix(k, "<") && i >= 0 {
			v = v[:i] // <name>value</name>
		}
		if v = strings.TrimSpace(v); v != "" {
			m.values = append(m.values, v)
		}
	}
	sort.Slice(m.values, func(i, j int) bool { return len(m.values[i]) > len(m.values[j]) })
	return m
}

// text hides the secrets in free text: a command, an error.
func (m masker) text(s string) string {
	s = mask(s, m.sec)
	for _, v := range m.values {
		s = strings.ReplaceAll(s, v, secret.Shown)
	}
	return s
}

// diff hides every secret a unified diff of the file could show, on every
// kind of line (a context line shows as much as a changed one).
func (m masker) diff(d string) string {
	lines := strings.Split(mask(d, m.sec), "\n")
	for i, l := range lines {
		// The two header lines, hunk headers and the trailing "": every
		// other line starts with ' ', '-' or '+'.
		if i < 2 || l == "" || strings.HasPrefix(l, "@@") {
			continue
		}
		if k, ok := secretPart(l[1:], m.prefixes); ok {
			lines[i] = l[:1] + k + secret.Shown
		}
	}
	return strings.Join(lines, "\n")
}

// maskDiff is newMasker(want, sec).diff(d).
func maskDiff(d, want string, sec secret.Secret) string { return newMasker(want, sec).diff(d) }

// secretPrefixes returns, for each line of want that holds one of the
// cluster's passwords, the text before it.
func secretPrefixes(want string, sec secret.Secret) []string {
	var out []string
	var vs []string
	for _, v := range sec.Values() {
		if !strings.Contains(v, "\n") {
			vs = append(vs, v)
		}
	}
	for _, l := range strings.Split(want, "\n") {
		for _, v := range vs {
			if i := strings.Index(l, v); i >= 0 {
				out = append(out, strings.TrimLeft(l[:i], " \t"))
				break
			}
		}
	}
	return out
}

// secretPart returns the part of line to keep before secret.Shown when the
// rest of it is secret.
func secretPart(line string, prefixes []string) (string, bool) {
	body := strings.TrimLeft(line, " \t")
	indent := line[:len(line)-len(body)]
	for _, p := range prefixes {
		// A password alone on its line: so may any one-word line be.
		if p == "" && !strings.ContainsAny(body, " \t") || p != "" && strings.HasPrefix(body, p) && len(body) > len(p) {
			return indent + p, true
		}
	}
	if strings.HasPrefix(body, "#") || strings.HasPrefix(body, "<!--") {
		return "", false // a comment ("# Password for the replicas") says, not holds
	}
	if k, ok := sensitiveKey(body); ok {
		return indent + k, true
	}
	return "", false
}

// sensitiveKey returns the part of a config line before its secret value
// (with the space after it):
// a directive (or a two-word one, "server NAME-pass") whose name says it is
// secret, and lines whose secret the name does not say.
func sensitiveKey(line string) (string, bool) {
	t := strings.Fields(line)
	switch {
	case len(t) >= 2 && secretName(t[0]):
		return t[0] + " ", true
	case len(t) >= 3 && secretName(t[1]):
		return t[0] + " " + t[1] + " ", true
	}
	if m := xmlElement.FindStringSubmatch(line); m != nil && secretName(m[1]) {
		return "<" + m[1] + ">", true
	}
	for _, f := range secretLines {
		if k, ok := f(line); ok {
			return k, true
		}
	}
	return "", false
}

var secretLines []func(line string) (string, bool)

// RegisterSecretLine adds a kind of config line whose secret its name does
// not say (a product's hashed password lines): f returns the part of line
// before the secret, and whether line is such a line.
func RegisterSecretLine(f func(line string) (string, bool)) { secretLines = append(secretLines, f) }

// xmlElement is a one-line element: <name>value</name>.
var xmlElement = regexp.MustCompile(`^\s*<([A-Za-z0-9_.-]+)>.*</([A-Za-z0-9_.-]+)>\s*$`)

// secretWords end the names of secret settings: tls-key-file-pass,
// masterauth, auth-pass, db-pass, token_encryption_key.
// Only the name's last word counts, so tls-key-file (a path) and auth-user
// (a name) stay readable.
var secretWords = []string{"pass", "passwd", "password", "passphrase", "pwd", "secret", "key", "auth", "token", "credential", "credentials"}

// SecretName tells whether a setting's name says it holds a secret, for
// product modules that show settings by name (asconf).
func SecretName(name string) bool { return secretName(name) }

// secretName tells whether a setting's name says it holds a secret.
func secretName(name string) bool {
	words := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
	})
	if len(words) == 0 {
		return false
	}
	last := words[len(words)-1]
	for _, w := range secretWords {
		if strings.HasSuffix(last, w) {
			return true
		}
	}
	return false
}
