// Package secret holds a system's secrets away from everything that prints:
// its password (and during a rotation the one it replaces) and its named
// secrets (a host key, a token key: `secrets: NAME: {file: PATH}`).
//
// A Secret's value never enters CUE: stacks write a placeholder where the
// value belongs, and only the modules that write files or feed stdin swap
// in the real value. Every output stream also goes through a Redactor as a
// last line of defence.
package secret

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// Placeholder stands for the cluster password in rendered resources.
const Placeholder = "@@hastack:redis-password@@"

// PreviousPlaceholder stands for the password being replaced during a
// rotation (empty when none is).
const PreviousPlaceholder = "@@hastack:previous-redis-password@@"

// NamedPlaceholder stands for the named secret name in rendered resources.
func NamedPlaceholder(name string) string { return namedPrefix + name + "@@" }

const namedPrefix = "@@hastack:secret:"

// namedRE matches any named placeholder, for Mask.
var namedRE = regexp.MustCompile(`@@hastack:secret:[A-Za-z][A-Za-z0-9_-]*@@`)

// ValidName reports whether name can name a secret (and its placeholder).
func ValidName(name string) bool {
	return regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`).MatchString(name)
}

// Shown is how a secret is printed.
const Shown = "(sensitive)"

// Source says where the password comes from. Exactly one of Env and File is set.
type Source struct {
	Env  string `json:"env,omitempty"`
	File string `json:"file,omitempty"`
}

func (s Source) String() string {
	if s.File != "" {
		return "file " + s.File
	}
	return "environment variable " + s.Env
}

// Secret is a password that refuses to be printed. During a rotation it
// also carries the password it replaces, and it carries the system's named
// secrets. It is a value: With* return a copy.
type Secret struct {
	v, prev string
	named   *namedSet // never changed once built, so copies may share it
}

type namedSet struct{ m map[string]string }

// WithNamed returns s carrying v as the named secret name.
func (s Secret) WithNamed(name string, v Secret) Secret {
	m := map[string]string{name: v.v}
	if s.named != nil {
		for k, x := range s.named.m {
			if k != name {
				m[k] = x
			}
		}
	}
	s.named = &namedSet{m}
	return s
}

// Named returns the named secret name, and whether s carries it.
func (s Secret) Named(name string) (Secret, bool) {
	if s.named == nil {
		return Secret{}, false
	}
	v, ok := s.named.m[name]
	return Secret{v: v}, ok
}

// Names lists the named secrets s carries, sorted.
func (s Secret) Names() []string {
	if s.named == nil {
		return nil
	}
	var ns []string
	for k := range s.named.m {
		ns = append(ns, k)
	}
	sort.Strings(ns)
	return ns
}

// Values lists every value to hide, longest first: the passwords, the
// named secrets, and each line of a named secret of several lines (a
// private key shows line by line in a diff). A PEM armour line
// ("-----BEGIN ... KEY-----") is no secret and is left out, and so are
// lines shorter than 8 bytes, which would hide ordinary words.
func (s Secret) Values() []string {
	seen := map[string]bool{}
	var out []string
	add := func(v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	add(s.v)
	add(s.prev)
	for _, n := range s.Names() {
		v := s.named.m[n]
		add(v)
		if strings.Contains(v, "\n") {
			for _, l := range strings.Split(v, "\n") {
				l = strings.TrimSpace(l)
				if len(l) >= 8 && !strings.HasPrefix(l, "-----") {
					add(l)
				}
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// MultiLine reports whether text holds the placeholder of a named secret
// of more than one line: a file made of such a secret shows no diff.
func (s Secret) MultiLine(text string) bool {
	for _, n := range s.Names() {
		if strings.Contains(s.named.m[n], "\n") && strings.Contains(text, NamedPlaceholder(n)) {
			return true
		}
	}
	return false
}

// WithPrevious returns s carrying p as the password it replaces.
func (s Secret) WithPrevious(p Secret) Secret { s.prev = p.v; return s }

// Previous is the password s replaces, zero when not rotating.
func (s Secret) Previous() Secret { return Secret{v: s.prev} }

// New wraps a value (tests and rotation use it).
func New(v string) Secret { return Secret{v: v} }

// Value returns the password itself: only for writing it where it belongs.
func (s Secret) Value() string { return s.v }

// IsZero reports whether no password is set (named secrets aside).
func (s Secret) IsZero() bool { return s.v == "" }

func (s Secret) String() string   { return Shown }
func (s Secret) GoString() string { return Shown }

// MarshalJSON keeps a secret out of any JSON output.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Shown + `"`), nil }

// ErrUnset is returned when the source holds no password at all.
var ErrUnset = errors.New("no password set")

// Resolve reads the password. Errors never contain the value.
func (s Source) Resolve() (Secret, error) {
	var v string
	switch {
	case s.File != "":
		b, err := readFile(s.File)
		if err != nil {
			return Secret{}, fmt.Errorf("password %s: %w", s, err)
		}
		v = strings.TrimRight(string(b), "\r\n")
	case s.Env != "":
		var ok bool
		v, ok = os.LookupEnv(s.Env)
		if !ok {
			return Secret{}, fmt.Errorf("password %s: %w", s, ErrUnset)
		}
	default:
		return Secret{}, errors.New("password: no source given (set secret.env or secret.file)")
	}
	if err := Check(v); err != nil {
		return Secret{}, fmt.Errorf("password %s: %w", s, err)
	}
	return Secret{v: v}, nil
}

// MaxFileBytes bounds a password file: it holds one line, a password of
// at most 512 characters.
const MaxFileBytes = 4 << 10

// MaxNamedBytes bounds a named secret: a 16384-bit RSA private key in PEM
// is about 12 kB.
const MaxNamedBytes = 64 << 10

// ResolveNamed reads the named secret name. Unlike a password it may hold
// several lines and any printable character; trailing line ends are
// dropped (a stack writes the final newline a file needs). Errors never
// contain the value.
func (s Source) ResolveNamed(name string) (Secret, error) {
	var v string
	switch {
	case s.File != "":
		b, err := readFileMax(s.File, MaxNamedBytes)
		if err != nil {
			return Secret{}, fmt.Errorf("secret %s: %s: %w", name, s, err)
		}
		v = string(b)
	case s.Env != "":
		var ok bool
		v, ok = os.LookupEnv(s.Env)
		if !ok {
			return Secret{}, fmt.Errorf("secret %s: %s: %w", name, s, errors.New("not set"))
		}
	default:
		return Secret{}, fmt.Errorf("secret %s: no source given (set env or file)", name)
	}
	v = strings.TrimRight(v, "\r\n")
	if err := CheckNamed(v); err != nil {
		return Secret{}, fmt.Errorf("secret %s: %s: %w", name, s, err)
	}
	return Secret{v: v}, nil
}

// CheckNamed tells whether v can serve as a named secret, without quoting it.
func CheckNamed(v string) error {
	switch {
	case v == "":
		return errors.New("it is empty")
	case len(v) > MaxNamedBytes:
		return fmt.Errorf("it is longer than %d bytes", MaxNamedBytes)
	case !utf8.ValidString(v):
		return errors.New("it is not UTF-8 text")
	case strings.Contains(v, "@@"):
		return errors.New("it contains \"@@\"")
	}
	for _, r := range v {
		if r != '\n' && r != '\t' && r != '\r' && !unicode.IsPrint(r) {
			return errors.New("it holds a control character")
		}
	}
	return nil
}

// readFile reads a password file the way OpenSSH reads a private key: the
// file itself (no symlink, which whoever owns its folder could re-point),
// opened without blocking (a FIFO would wait forever for a writer), then
// checked on the open descriptor, so that what is checked is what is read:
// a regular file (not /dev/zero, which would fill the memory), small, owned
// by the user running hastack or by root (its owner chooses the cluster's
// password), and neither writable by its group nor open to others (0600,
// or 0640 to share it with a group, as /etc/shadow is). Errors never hold
// any of its content.
func readFile(path string) ([]byte, error) { return readFileMax(path, MaxFileBytes) }

func readFileMax(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, errors.New("is a symlink: name the file itself")
	}
	if err != nil {
		return nil, errors.Unwrap(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, errors.Unwrap(err)
	}
	if err := fileOK(st, max); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, errors.Unwrap(err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("holds more than %d bytes: a secret's file holds only the secret", max)
	}
	return b, nil
}

// fileOK checks what fstat says about a password file.
func fileOK(st os.FileInfo, max int64) error {
	m := st.Mode()
	if !m.IsRegular() {
		return fmt.Errorf("is %s, not a regular file: the password must be in a plain file", FileKind(m))
	}
	if st.Size() > max {
		return fmt.Errorf("is %d bytes: a secret's file holds only the secret (at most %d bytes)", st.Size(), max)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() && sys.Uid != 0 {
		return fmt.Errorf("is owned by uid %d, neither you (uid %d) nor root: whoever owns it chooses the cluster's password", sys.Uid, os.Getuid())
	}
	if perm := m.Perm(); perm&0o027 != 0 {
		return fmt.Errorf("has mode %04o, open to others: chmod 600 it (or 640 to share it with a group)", perm)
	}
	return nil
}

// FileKind names a file type that is not a regular file, for the messages
// about files hastack refuses to read (the secret file, the config's files).
func FileKind(m os.FileMode) string {
	switch {
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a folder"
	}
	return "a special file"
}

// Check tells whether v can serve as the Redis password, without quoting it.
// Redis, Sentinel and HAProxy read it as one bare word of a config line.
func Check(v string) error {
	switch {
	case v == "":
		return errors.New("the password is empty")
	case len(v) < 8:
		return errors.New("the password is shorter than 8 characters")
	case len(v) > 512:
		return errors.New("the password is longer than 512 characters")
	}
	for _, r := range v {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"' || r == '\'' || r == '#' || r == '\\' {
			return errors.New("the password holds a space, quote, '#', backslash or control character, which config files cannot carry unquoted")
		}
	}
	if strings.Contains(v, "@@") {
		return errors.New("the password may not contain \"@@\"")
	}
	return nil
}

// Fill replaces the placeholders in b with the secrets.
func Fill(b []byte, s Secret) []byte {
	if !s.IsZero() {
		b = bytes.ReplaceAll(b, []byte(Placeholder), []byte(s.v))
		b = bytes.ReplaceAll(b, []byte(PreviousPlaceholder), []byte(s.prev))
	}
	if s.named != nil && bytes.Contains(b, []byte(namedPrefix)) {
		for n, v := range s.named.m {
			b = bytes.ReplaceAll(b, []byte(NamedPlaceholder(n)), []byte(v))
		}
	}
	return b
}

// Mask replaces the placeholders with Shown, for display.
func Mask(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, Placeholder, Shown), PreviousPlaceholder, Shown)
	if strings.Contains(s, namedPrefix) {
		s = namedRE.ReplaceAllString(s, Shown)
	}
	return s
}

// Redactor is an io.Writer that replaces every known secret value with Shown
// before passing bytes on. It buffers up to a line so a secret split across
// two writes is still caught.
type Redactor struct {
	mu      sync.Mutex
	w       io.Writer
	secrets [][]byte
	buf     []byte
}

// NewRedactor wraps w.
func NewRedactor(w io.Writer) *Redactor { return &Redactor{w: w} }

// Add registers the values of s to hide (Values). Empty values are ignored.
func (r *Redactor) Add(s Secret) {
	r.mu.Lock()
	for _, v := range s.Values() {
		r.secrets = append(r.secrets, []byte(v))
	}
	r.mu.Unlock()
}

func (r *Redactor) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	if i := bytes.LastIndexByte(r.buf, '\n'); i >= 0 {
		out := r.redact(r.buf[:i+1])
		r.buf = append(r.buf[:0], r.buf[i+1:]...)
		if _, err := r.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes out a trailing partial line, then flushes the wrapped
// writer when it has a Flush of its own (a termsafe.Writer holds back a
// partial UTF-8 sequence).
func (r *Redactor) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) > 0 {
		out := r.redact(r.buf)
		r.buf = r.buf[:0]
		if _, err := r.w.Write(out); err != nil {
			return err
		}
	}
	if f, ok := r.w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

// redact replaces the longest secrets first: were one a part of another,
// replacing the shorter first would leave pieces of the longer.
func (r *Redactor) redact(b []byte) []byte {
	ss := append([][]byte(nil), r.secrets...)
	sort.Slice(ss, func(i, j int) bool { return len(ss[i]) > len(ss[j]) })
	out := append([]byte(nil), b...)
	for _, s := range ss {
		out = bytes.ReplaceAll(out, s, []byte(Shown))
	}
	return out
}
