// Package secret holds the cluster password away from everything that prints.
//
// A Secret's value never enters CUE: stacks write the Placeholder where the
// password belongs, and only the modules that write files or feed stdin swap
// in the real value. Every output stream also goes through a Redactor as a
// last line of defence.
package secret

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"unicode"
)

// Placeholder stands for the cluster password in rendered resources.
const Placeholder = "@@hastack:redis-password@@"

// PreviousPlaceholder stands for the password being replaced during a
// rotation (empty when none is).
const PreviousPlaceholder = "@@hastack:previous-redis-password@@"

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
// also carries the password it replaces.
type Secret struct{ v, prev string }

// WithPrevious returns s carrying p as the password it replaces.
func (s Secret) WithPrevious(p Secret) Secret { s.prev = p.v; return s }

// Previous is the password s replaces, zero when not rotating.
func (s Secret) Previous() Secret { return Secret{v: s.prev} }

// New wraps a value (tests and rotation use it).
func New(v string) Secret { return Secret{v: v} }

// Value returns the password itself: only for writing it where it belongs.
func (s Secret) Value() string { return s.v }

// IsZero reports whether no password is set.
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

// readFile reads a password file the way OpenSSH reads a private key: the
// file itself (no symlink, which whoever owns its folder could re-point),
// opened without blocking (a FIFO would wait forever for a writer), then
// checked on the open descriptor, so that what is checked is what is read:
// a regular file (not /dev/zero, which would fill the memory), small, owned
// by the user running hastack or by root (its owner chooses the cluster's
// password), and neither writable by its group nor open to others (0600,
// or 0640 to share it with a group, as /etc/shadow is). Errors never hold
// any of its content.
func readFile(path string) ([]byte, error) {
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
	if err := fileOK(st); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, errors.Unwrap(err)
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("holds more than %d bytes: a password file holds only the password", MaxFileBytes)
	}
	return b, nil
}

// fileOK checks what fstat says about a password file.
func fileOK(st os.FileInfo) error {
	m := st.Mode()
	if !m.IsRegular() {
		return fmt.Errorf("is %s, not a regular file: the password must be in a plain file", FileKind(m))
	}
	if st.Size() > MaxFileBytes {
		return fmt.Errorf("is %d bytes: a password file holds only the password (at most %d bytes)", st.Size(), MaxFileBytes)
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

// Fill replaces the placeholders in b with the passwords.
func Fill(b []byte, s Secret) []byte {
	if s.IsZero() {
		return b
	}
	b = bytes.ReplaceAll(b, []byte(Placeholder), []byte(s.v))
	return bytes.ReplaceAll(b, []byte(PreviousPlaceholder), []byte(s.prev))
}

// Mask replaces the placeholders with Shown, for display.
func Mask(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, Placeholder, Shown), PreviousPlaceholder, Shown)
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

// Add registers a value to hide. Empty values are ignored.
func (r *Redactor) Add(s Secret) {
	if s.IsZero() {
		return
	}
	r.mu.Lock()
	r.secrets = append(r.secrets, []byte(s.v))
	if s.prev != "" {
		r.secrets = append(r.secrets, []byte(s.prev))
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
